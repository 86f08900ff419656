using System.Net;
using System.Net.Sockets;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Cli;

/// <summary>
/// Expected failures to start — a busy port, a broken file, a logging section Serilog cannot
/// use — are one line on stderr and exit code 1, never a stack trace. The real executable.
/// </summary>
public sealed class StartupErrorTests
{
    /// <summary>A socket listening on a free loopback port, held by this test process.</summary>
    private static Socket Occupy()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        socket.Listen(1);
        return socket;
    }

    private static int Port(Socket socket) => ((IPEndPoint)socket.LocalEndPoint!).Port;

    private static void AssertNoStackTrace(string output) =>
        Assert.DoesNotContain(output.Split('\n'), line => line.StartsWith("   at ", StringComparison.Ordinal));

    private static async Task<string> ConfigAsync(string dir, int listenPort, int adminPort)
    {
        await File.WriteAllTextAsync(Path.Combine(dir, "appsettings.json"), $$"""
            {
              "BindProxy": { "Routes": { "kafka": { "Listen": "127.0.0.1:{{listenPort}}", "Upstream": "127.0.0.1:9", "Source": "127.0.0.2" } } },
              "Admin": { "Listen": "127.0.0.1:{{adminPort}}" }
            }
            """);
        return dir;
    }

    [Fact]
    public async Task A_busy_listen_port_is_one_line_naming_the_route_the_port_and_who_holds_it()
    {
        using var busy = Occupy();
        using var free = Occupy();
        int adminPort = Port(free);
        free.Dispose();
        var dir = await ConfigAsync(BindProxyCli.TempDir(), Port(busy), adminPort);

        var (exit, output, err) = await BindProxyCli.RunAsync(dir);

        Assert.Equal(1, exit);
        Assert.Equal($"error: route 'kafka': Listen: 127.0.0.1:{Port(busy)} is in use by pid {Environment.ProcessId} (", err[..err.IndexOf('(', StringComparison.Ordinal)] + "(");
        Assert.Single(err.TrimEnd().Split('\n'));
        AssertNoStackTrace(output + err);
    }

    [Fact]
    public async Task A_busy_admin_port_is_one_line_too()
    {
        using var busy = Occupy();
        using var free = Occupy();
        int listenPort = Port(free);
        free.Dispose();
        var dir = await ConfigAsync(BindProxyCli.TempDir(), listenPort, Port(busy));

        var (exit, output, err) = await BindProxyCli.RunAsync(dir);

        Assert.Equal(1, exit);
        Assert.StartsWith($"error: Admin:Listen: 127.0.0.1:{Port(busy)} is in use by pid {Environment.ProcessId} ", err, StringComparison.Ordinal);
        Assert.Single(err.TrimEnd().Split('\n'));
        AssertNoStackTrace(output + err);
    }

    [Fact]
    public async Task A_busy_port_given_with_admin_is_one_line_too()
    {
        using var busy = Occupy();
        var dir = BindProxyCli.TempDir();

        var (exit, output, err) = await BindProxyCli.RunAsync(dir, "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9", "--source", "127.0.0.2", "--admin", $"127.0.0.1:{Port(busy)}");

        Assert.Equal(1, exit);
        Assert.StartsWith($"error: Admin:Listen: 127.0.0.1:{Port(busy)} is in use by pid {Environment.ProcessId} ", err, StringComparison.Ordinal);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.DoesNotContain("listening on", output, StringComparison.Ordinal);
        AssertNoStackTrace(output + err);
    }

    /// <summary>The usual holder of a proxy's port is the proxy itself, started from the same file: check says so.</summary>
    [Fact]
    public async Task Check_names_a_running_BindProxy_that_holds_the_port()
    {
        await using var running = ProxyProcess.Start(BindProxyCli.TempDir(), "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9", "--source", "127.0.0.2", "--admin", "off");
        var endpoint = await running.ListeningAsync("cli", TimeSpan.FromSeconds(30));
        using var free = Occupy();
        int adminPort = Port(free);
        free.Dispose();
        var dir = await ConfigAsync(BindProxyCli.TempDir(), endpoint.Port, adminPort);

        var (exit, output, err) = await BindProxyCli.RunAsync(dir, "check");

        Assert.Equal(1, exit);
        Assert.StartsWith($"error: route 'kafka': Listen: 127.0.0.1:{endpoint.Port} is in use by pid {running.Id} (", err, StringComparison.Ordinal);
        Assert.EndsWith("), a BindProxy already running", err.TrimEnd(), StringComparison.Ordinal);
        AssertNoStackTrace(output + err);
    }

    [Fact]
    public async Task Check_test_binds_listen_and_admin_endpoints()
    {
        using var busyListen = Occupy();
        using var busyAdmin = Occupy();
        var dir = await ConfigAsync(BindProxyCli.TempDir(), Port(busyListen), Port(busyAdmin));

        var (exit, output, err) = await BindProxyCli.RunAsync(dir, "check");

        Assert.Equal(1, exit);
        Assert.Contains($"route 'kafka': Listen: 127.0.0.1:{Port(busyListen)} is in use by pid {Environment.ProcessId}", err, StringComparison.Ordinal);
        Assert.Contains($"Admin:Listen: 127.0.0.1:{Port(busyAdmin)} is in use by pid {Environment.ProcessId}", err, StringComparison.Ordinal);
        Assert.DoesNotContain("configuration OK", output, StringComparison.Ordinal);
        AssertNoStackTrace(output + err);
    }

    [Fact]
    public async Task Broken_json_at_startup_names_the_file_line_and_column()
    {
        var dir = BindProxyCli.TempDir();
        await File.WriteAllTextAsync(Path.Combine(dir, "appsettings.json"), "{\n  \"BindProxy\": {\n    \"Routes\": { \"a\": { \"Listen\": \"127.0.0.1:0\" \"Upstream\": \"x\" } }\n  }\n}\n");

        var (exit, output, err) = await BindProxyCli.RunAsync(dir);

        Assert.Equal(1, exit);
        Assert.Equal($"error: configuration file {Path.Combine(dir, "appsettings.json")} is not valid JSON: line 3, column 48: '\"' is invalid after a value. Expected either ',', '}}', or ']'.",
            err.TrimEnd());
        AssertNoStackTrace(output + err);
    }

    [Fact]
    public async Task A_serilog_section_serilog_cannot_use_is_one_line()
    {
        var dir = BindProxyCli.TempDir();
        await File.WriteAllTextAsync(Path.Combine(dir, "appsettings.json"), """
            { "BindProxy": { "Routes": { "a": { "Listen": "127.0.0.1:0", "Upstream": "127.0.0.1:9", "Source": "127.0.0.2" } } },
              "Serilog": { "MinimumLevel": "Loud" } }
            """);

        var (exit, output, err) = await BindProxyCli.RunAsync(dir);

        Assert.Equal(1, exit);
        Assert.Equal("error: the Serilog section cannot be used: The value Loud is not a valid Serilog level.", err.TrimEnd());
        AssertNoStackTrace(output + err);
    }
}
