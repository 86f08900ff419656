using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Cli;

/// <summary>
/// Logging cannot go silent: a Serilog section that only sets a level keeps the console, from
/// the file or from an environment variable, and --log-level sets the level. The real executable.
/// </summary>
public sealed class LoggingTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(30);

    private const string Route = "\"BindProxy\": { \"Routes\": { \"quiet\": { \"Listen\": \"127.0.0.1:0\", \"Upstream\": \"127.0.0.1:9\", \"Source\": \"127.0.0.2\" } } }";

    private static async Task<string> DirAsync(string config)
    {
        var dir = BindProxyCli.TempDir();
        await File.WriteAllTextAsync(Path.Combine(dir, "appsettings.json"), config);
        return dir;
    }

    /// <summary>
    /// Debug shows what someone debugging a connection needs: each connect attempt with its
    /// source, destination, time and outcome, and what a reload decided for every route.
    /// </summary>
    [Fact]
    public async Task Log_level_debug_shows_each_connect_attempt_and_the_reload_decisions()
    {
        await using var upstream = TestServer.Echo();
        int refused;
        using (var probe = new Socket(SocketType.Stream, ProtocolType.Tcp))
        {
            probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            refused = ((IPEndPoint)probe.LocalEndPoint!).Port;
        }

        string Config(string downSource) =>
            "{ \"BindProxy\": { \"Routes\": { " +
            $"\"up\": {{ \"Listen\": \"127.0.0.1:0\", \"Upstream\": \"{upstream.Address}\", \"Source\": \"127.0.0.2\" }}, " +
            $"\"down\": {{ \"Listen\": \"127.0.0.1:0\", \"Upstream\": \"127.0.0.1:{refused}\", \"Source\": \"{downSource}\" }} }} }} }}";
        var dir = await DirAsync(Config("127.0.0.3"));
        await using var proxy = ProxyProcess.Start(dir, "--log-level", "debug", "--admin", "off");
        var up = await proxy.ListeningAsync("up", Prompt);
        var down = await proxy.ListeningAsync("down", Prompt);

        using (var client = await SocketExtensions.ConnectAsync(up))
        {
            await client.SendAsync(new byte[] { 1 });
            await client.ReadExactlyAsync(1);
        }

        var connected = await proxy.WaitForLineAsync(" DBG up: connect #", Prompt);
        Assert.Matches($@" DBG up: connect #\d+ attempt 1: 127\.0\.0\.2 → {upstream.Endpoint.ToString().Replace(".", "\\.", StringComparison.Ordinal)} connected in [\d.]+ ms$", connected);

        using (var client = await SocketExtensions.ConnectAsync(down))
        {
            await client.WaitForCloseAsync(Prompt);
        }

        var failed = await proxy.WaitForLineAsync(" DBG down: connect #", Prompt);
        Assert.Matches($@" DBG down: connect #\d+ attempt 1: 127\.0\.0\.3 → 127\.0\.0\.1:{refused} failed after [\d.]+ ms: Connection refused$", failed);

        // A reload that changes one route and leaves the other: what became of each is said.
        await File.WriteAllTextAsync(Path.Combine(dir, "appsettings.json"), Config("127.0.0.4"));
        await proxy.WaitForLineAsync(" DBG Reload: the configuration file changed", Prompt);
        await proxy.WaitForLineAsync(" DBG Reload: route up unchanged; its listeners and connections stay as they are", Prompt);
        await proxy.WaitForLineAsync(" INF Reload: route down changed: Source 127.0.0.3 → 127.0.0.4", Prompt);
        await proxy.WaitForLineAsync(" DBG Reload: route down: its 0 open connection(s) keep the settings they started with and new ones get the new; its listeners stay on 127.0.0.1:0", Prompt);
    }

    [Fact]
    public async Task A_serilog_section_with_only_a_level_still_logs_to_the_console()
    {
        var dir = await DirAsync("{ " + Route + ", \"Serilog\": { \"MinimumLevel\": \"Debug\" } }");
        await using var proxy = ProxyProcess.Start(dir);
        var line = await proxy.WaitForLineAsync("Route quiet listening on", Prompt);
        Assert.Matches(@"^\d\d:\d\d:\d\d\.\d\d\d INF Route quiet listening on 127\.0\.0\.1:\d+$", line);
    }

    [Fact]
    public async Task The_level_alone_from_an_environment_variable_still_logs()
    {
        var dir = await DirAsync("{ " + Route + " }");
        using var process = BindProxyCli.Start(dir, new Dictionary<string, string> { ["BINDPROXY_Serilog__MinimumLevel__Default"] = "Debug" });
        try
        {
            var line = await ReadUntilAsync(process, "Route quiet listening on");
            Assert.Contains(" INF Route quiet listening on 127.0.0.1:", line, StringComparison.Ordinal);
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task Log_level_warning_leaves_out_information_and_an_unknown_level_is_refused()
    {
        var dir = BindProxyCli.TempDir();
        int port;
        using (var probe = new Socket(SocketType.Stream, ProtocolType.Tcp))
        {
            probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            port = ((IPEndPoint)probe.LocalEndPoint!).Port;
        }

        // Nothing answers on port 9: a client's connection is closed with a warning, the first
        // line that may come out at this level.
        using var process = BindProxyCli.Start(dir, null, "--log-level", "warning", "--listen", $"127.0.0.1:{port}", "--upstream", "127.0.0.1:9", "--source", "127.0.0.2");
        try
        {
            await ConnectOnceListeningAsync(new IPEndPoint(IPAddress.Loopback, port), process);
            var lines = new List<string>();
            using var timeout = new CancellationTokenSource(Prompt);
            while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
            {
                lines.Add(line);
                if (line.Contains(" WRN cli: 127.0.0.1:", StringComparison.Ordinal))
                {
                    break;
                }
            }

            Assert.Contains(lines, l => l.Contains("connect refused", StringComparison.Ordinal));
            Assert.DoesNotContain(lines, l => l.Contains(" INF ", StringComparison.Ordinal));
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }

        var (exit, _, err) = await BindProxyCli.RunAsync(dir, "--log-level", "loud");
        Assert.Equal(1, exit);
        Assert.Contains("--log-level: 'loud' is not a level; expected verbose, debug, information, warning, error or fatal", err, StringComparison.Ordinal);
    }

    /// <summary>Connects as soon as the proxy listens, and lets go at once.</summary>
    private static Task ConnectOnceListeningAsync(IPEndPoint endpoint, Process process) =>
        Poll.UntilAsync(
            async () =>
            {
                if (process.HasExited)
                {
                    Assert.Fail($"the proxy exited with {process.ExitCode}: {await process.StandardError.ReadToEndAsync()}");
                }

                try
                {
                    using var client = await SocketExtensions.ConnectAsync(endpoint);
                    return true;
                }
                catch (SocketException)
                {
                    return false;
                }
            },
            $"the proxy to accept a connection on {endpoint}",
            Prompt);

    private static async Task<string> ReadUntilAsync(Process process, string fragment)
    {
        using var timeout = new CancellationTokenSource(Prompt);
        while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            if (line.Contains(fragment, StringComparison.Ordinal))
            {
                return line;
            }
        }

        throw new InvalidOperationException($"no line with '{fragment}'; stderr: {await process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken)}");
    }

    /// <summary>
    /// A console nobody reads does not stop the proxy: its output goes into a pipe that fills and
    /// stays full, yet thousands of connections, each logged opening and closing (at Debug, where
    /// every connection's lines are written), go through, and the lines that did not fit are
    /// dropped and counted rather than waited for.
    /// </summary>
    [Fact]
    public async Task A_console_nobody_reads_drops_log_lines_instead_of_holding_up_connections()
    {
        await using var upstream = TestServer.Echo();
        int listen = FreePort(), admin = FreePort();
        var dir = BindProxyCli.TempDir();

        // sleep never reads its stdin: the proxy's console is a pipe that fills after 64 KiB.
        string dll = Path.Combine(AppContext.BaseDirectory, "BindProxy.dll");
        await using var proxy = ProxyProcess.StartShell(
            $"dotnet '{dll}' --listen 127.0.0.1:{listen} --upstream {upstream.Address} --source 127.0.0.2 --admin 127.0.0.1:{admin} --log-level debug 2>&1 | sleep 600",
            dir, new Dictionary<string, string>());
        var endpoint = new IPEndPoint(IPAddress.Loopback, listen);
        await Poll.UntilAsync(async () =>
        {
            try
            {
                using var probe = await SocketExtensions.ConnectAsync(endpoint);
                return true;
            }
            catch (SocketException)
            {
                return false;
            }
        }, "the proxy to listen", Prompt);

        // Two lines, about 300 B, per connection: far more than the pipe holds, and more lines
        // than the log's queue holds too.
        const int Connections = 6000;
        var started = Stopwatch.StartNew();
        for (int i = 0; i < Connections; i++)
        {
            using var client = await SocketExtensions.ConnectAsync(endpoint);
            await client.SendAsync(new byte[] { (byte)i });
            Assert.Equal((byte)i, (await client.ReadExactlyAsync(1, TimeSpan.FromSeconds(10)))[0]);
        }

        TestContext.Current.TestOutputHelper?.WriteLine($"{Connections} connections in {started.Elapsed.TotalSeconds:0.0} s with the console full");
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{admin}") };
        var dropped = await Poll.UntilAsync(
            async () => BindProxy.Tests.Admin.PrometheusText.Value(await http.GetStringAsync("/metrics"), "bindproxy_log_events_dropped_total"),
            value => value > 0, "log events to be counted as dropped", Prompt);
        TestContext.Current.TestOutputHelper?.WriteLine($"{dropped} log events dropped");
    }

    /// <summary>
    /// At the default level a burst of connections writes the first lines one by one and then a
    /// summary a second with how many were left out, so a load test neither floods the console
    /// nor holds thousands of log events in memory; together they account for every connection.
    /// </summary>
    [Fact]
    public async Task At_the_default_level_a_burst_of_connections_is_logged_within_a_budget_and_the_rest_summarised()
    {
        await using var upstream = TestServer.Echo();
        var dir = await DirAsync("{ \"BindProxy\": { \"Routes\": { \"burst\": { \"Listen\": \"127.0.0.1:0\", " +
            $"\"Upstream\": \"{upstream.Address}\", \"Source\": \"127.0.0.2\" }} }} }} }}");
        await using var proxy = ProxyProcess.Start(dir, "--admin", "off");
        var endpoint = await proxy.ListeningAsync("burst", Prompt);

        const int Connections = 400;
        var clients = new List<Socket>();
        try
        {
            for (int i = 0; i < Connections; i++)
            {
                var client = await SocketExtensions.ConnectAsync(endpoint);
                clients.Add(client);
                await client.SendAsync(new byte[] { 1 });
                await client.ReadExactlyAsync(1, TimeSpan.FromSeconds(10));
            }
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }

        static long Skipped(string line) =>
            long.Parse(line[(line.IndexOf(" INF ", StringComparison.Ordinal) + 5)..].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        int OpenLines() => proxy.Lines.Count(l => l.Contains(" INF burst: ", StringComparison.Ordinal) && l.Contains(" open (connect ", StringComparison.Ordinal));
        long SkippedOpens() => proxy.Lines.Where(l => l.Contains(" connection(s) opened and ", StringComparison.Ordinal)).Sum(Skipped);

        await Poll.UntilAsync(() => OpenLines() + SkippedOpens() == Connections,
            () => $"{OpenLines()} open lines and {SkippedOpens()} summarised, for {Connections} connections", Prompt);
        Assert.InRange(OpenLines(), BindProxy.Forwarding.ConnectionLines.Burst / 2, Connections - 50);
        Assert.Matches(@" INF \d+ connection\(s\) opened and \d+ closed in the last [\d.]+ s were not logged one by one \(more than 20 lines a second\); /api/connections lists the open ones, --log-level debug logs each$",
            proxy.Lines.First(l => l.Contains(" were not logged one by one ", StringComparison.Ordinal)));
    }

    private static int FreePort()
    {
        using var probe = new Socket(SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }
}
