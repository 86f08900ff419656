# Build: docker build -t bindproxy .
# Run (Linux): docker run --network host -v "$PWD/config:/config" bindproxy
#   The proxy reads ./appsettings.json of its working directory, /config: mount the folder that
#   holds your appsettings.json there (a folder, not the file, so edits reach the running proxy).
#   Without a mount it runs the shipped configuration. See README, Docker.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
# Set by BuildKit to the platform being built (amd64, arm64), which the SDK takes as -a and then
# precompiles for (ReadyToRun). No default here: a default would replace BuildKit's value. Without
# it (the legacy builder) the build is a portable one.
ARG TARGETARCH
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY src/BindProxy/BindProxy.csproj src/BindProxy/
RUN dotnet restore src/BindProxy/BindProxy.csproj ${TARGETARCH:+-a $TARGETARCH}
COPY appsettings.json ./
COPY src/BindProxy/ src/BindProxy/
RUN dotnet publish src/BindProxy/BindProxy.csproj -c Release ${TARGETARCH:+-a $TARGETARCH} --no-self-contained --no-restore -o /app

FROM mcr.microsoft.com/dotnet/aspnet:10.0
COPY --from=build /app /app
COPY appsettings.json /config/appsettings.json
WORKDIR /config
# The shipped configuration's Kafka route and admin endpoint (both on 127.0.0.1: reachable with
# --network host, which the proxy needs anyway to bind the host's 127.0.0.N source addresses).
EXPOSE 19092 9901
# The base image's unprivileged user.
USER $APP_UID
ENTRYPOINT ["dotnet", "/app/BindProxy.dll"]
