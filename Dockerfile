# Build: docker build -t bindproxy .
# Run:   docker run --network host -v "$PWD/appsettings.json:/app/appsettings.json:ro" bindproxy
# (--network host: the proxy binds 127.0.0.N source addresses of the host's loopback.)
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY src/BindProxy/BindProxy.csproj src/BindProxy/
RUN dotnet restore src/BindProxy/BindProxy.csproj
COPY appsettings.json ./
COPY src/ src/
RUN dotnet publish src/BindProxy/BindProxy.csproj -c Release -o /app --no-restore

FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /app ./
# The base image's unprivileged user; the config is a file to mount over /app/appsettings.json.
USER $APP_UID
ENTRYPOINT ["dotnet", "/app/BindProxy.dll"]
CMD ["--config", "/app/appsettings.json"]
