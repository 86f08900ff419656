using BindProxy.Addressing;

namespace BindProxy.Tests.Addressing;

/// <summary>How a busy port's holder is told to be a BindProxy.</summary>
public sealed class ListenProbeTests
{
    [Theory]
    [InlineData("/home/me/bindproxy/src/BindProxy/bin/Debug/net10.0/BindProxy --config appsettings.json", true)] // dotnet run's child
    [InlineData("dotnet /app/BindProxy.dll", true)]
    [InlineData("/root/.dotnet/tools/bindproxy exec --source 127.0.0.7", true)]
    [InlineData("./out/linux-x64/BindProxy", true)]
    [InlineData("dotnet run --project src/BindProxy", false)] // the SDK, not the proxy: its child holds the ports
    [InlineData("/repo/bench/BindProxy.Bench/bin/Debug/net10.0/BindProxy.Bench echo-server", false)]
    [InlineData("dotnet BindProxy.Demo.dll mock-cluster", false)]
    [InlineData("python3 -m http.server 9901", false)]
    [InlineData("", false)]
    public void A_command_line_is_a_BindProxy_when_it_runs_the_proxy_itself(string commandLine, bool expected) =>
        Assert.Equal(expected, ListenProbe.IsBindProxy(commandLine));
}
