using System.Diagnostics;
using System.Net.Sockets;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Hosting;

/// <summary>
/// SIGTERM or Ctrl-C: stop accepting, say so at once, let connections finish within the drain
/// timeout, abort the rest, exit 0; a second signal aborts them now.
/// </summary>
public sealed class ShutdownTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(30);

    private static async Task<string> ConfigDirAsync(string upstream, string drain)
    {
        var dir = Path.Combine(Path.GetTempPath(), "bindproxy-shutdown-" + Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(dir);
        await File.WriteAllTextAsync(Path.Combine(dir, "appsettings.json"),
            $$"""{ "BindProxy": { "DrainTimeout": "{{drain}}", "Routes": { "r": { "Listen": "127.0.0.1:0", "Upstream": "{{upstream}}", "Source": "127.0.0.2" } } } }""");
        return dir;
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task Open_connections_finish_their_work_and_the_process_exits_0(string engine)
    {
        await using var upstream = TestServer.Echo();
        await using var proxy = ProxyProcess.Start(await ConfigDirAsync(upstream.Address, "00:00:20"), "--engine", engine);
        var endpoint = await proxy.ListeningAsync("r", Prompt);

        using var client = await SocketExtensions.ConnectAsync(endpoint);
        await client.SendAsync(new byte[] { 1 });
        await client.ReadExactlyAsync(1);
        proxy.Terminate();
        await proxy.WaitForLineAsync("Shutdown: draining 1 connection(s), up to 20 s; Ctrl-C again to stop now", Prompt);

        // Draining: no new connections, but the open one still works until the client is done.
        var refused = await Assert.ThrowsAsync<SocketException>(() => SocketExtensions.ConnectAsync(endpoint));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        await client.SendAsync(new byte[] { 2 });
        Assert.Equal(2, (await client.ReadExactlyAsync(1))[0]);
        var stopwatch = Stopwatch.StartNew();
        client.Shutdown(SocketShutdown.Send);
        await client.ReadToEndAsync();

        Assert.Equal(0, await proxy.WaitForExitAsync(Prompt));
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(10), $"exit took {stopwatch.Elapsed} after the last connection closed");
        Assert.True(proxy.Lines.Any(l => l.Contains("closed: client FIN", StringComparison.Ordinal)), string.Join("\n", proxy.Lines));
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task Connections_still_open_after_the_drain_timeout_are_aborted_and_the_process_exits_0(string engine)
    {
        await using var upstream = TestServer.Echo();
        await using var proxy = ProxyProcess.Start(await ConfigDirAsync(upstream.Address, "00:00:02"), "--engine", engine);
        var endpoint = await proxy.ListeningAsync("r", Prompt);

        using var client = await SocketExtensions.ConnectAsync(endpoint);
        await client.SendAsync(new byte[] { 1 });
        await client.ReadExactlyAsync(1);
        var stopwatch = Stopwatch.StartNew();
        proxy.Terminate();

        var closed = await client.WaitForCloseAsync(Prompt);
        var waited = stopwatch.Elapsed;
        Assert.Equal(SocketError.ConnectionReset, closed);
        Assert.InRange(waited, TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(6));
        Assert.Equal(0, await proxy.WaitForExitAsync(Prompt));
    }

    [Fact]
    public async Task Ctrl_C_says_at_once_what_the_drain_waits_for_and_a_second_one_stops_now()
    {
        await using var upstream = TestServer.Echo();
        await using var proxy = ProxyProcess.Start(await ConfigDirAsync(upstream.Address, "00:00:30"));
        var endpoint = await proxy.ListeningAsync("r", Prompt);

        using var client = await SocketExtensions.ConnectAsync(endpoint);
        await client.SendAsync(new byte[] { 1 });
        await client.ReadExactlyAsync(1);

        var stopwatch = Stopwatch.StartNew();
        proxy.Interrupt();
        await proxy.WaitForLineAsync("Shutdown: draining 1 connection(s), up to 30 s; Ctrl-C again to stop now", Prompt);
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(2), $"the draining line came {stopwatch.Elapsed} after Ctrl-C");

        // Still draining: the connection works until the second Ctrl-C.
        await client.SendAsync(new byte[] { 2 });
        Assert.Equal(2, (await client.ReadExactlyAsync(1))[0]);
        stopwatch.Restart();
        proxy.Interrupt();
        Assert.Equal(0, await proxy.WaitForExitAsync(Prompt));
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(2), $"the process exited {stopwatch.Elapsed} after the second Ctrl-C");
        Assert.Equal(SocketError.ConnectionReset, await client.WaitForCloseAsync(Prompt));
        Assert.Contains(proxy.Lines, l => l.Contains("Shutdown: SIGINT again: stopping now", StringComparison.Ordinal));
        Assert.Contains(proxy.Lines, l => l.Contains("Shutdown: 1 connection(s) still open when asked to stop now; aborted", StringComparison.Ordinal));
    }

    /// <summary>
    /// As README runs it: <c>dotnet run</c> in a process group of its own, and a SIGTERM to the
    /// group (<c>timeout</c>, a CI runner), which reaches the proxy twice, milliseconds apart:
    /// from the group, and passed on by dotnet run. One request to stop: the drain goes on.
    /// </summary>
    [Fact]
    public async Task Under_dotnet_run_a_SIGTERM_to_the_process_group_drains()
    {
        await using var upstream = TestServer.Echo();
        var dir = await ConfigDirAsync(upstream.Address, "00:00:30");
        var configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name;
        var project = Path.Combine(Configuration.ShippedConfigTests.RepositoryRoot(), "src", "BindProxy");
        await using var proxy = ProxyProcess.StartShell($"dotnet run --project '{project}' -c {configuration} --no-build -- --admin off", dir, new Dictionary<string, string>());
        var endpoint = await proxy.ListeningAsync("r", TimeSpan.FromMinutes(2));
        using var client = await SocketExtensions.ConnectAsync(endpoint);
        await client.SendAsync(new byte[] { 1 });
        await client.ReadExactlyAsync(1);

        proxy.Terminate();
        await proxy.WaitForLineAsync("Shutdown: draining 1 connection(s), up to 30 s", Prompt);
        await client.SendAsync(new byte[] { 2 });
        Assert.Equal(2, (await client.ReadExactlyAsync(1))[0]);
        client.Shutdown(SocketShutdown.Send);
        await client.ReadToEndAsync();

        await proxy.WaitForExitAsync(Prompt);
        Assert.Contains(proxy.Lines, l => l.Contains("closed: client FIN", StringComparison.Ordinal));
        Assert.DoesNotContain(proxy.Lines, l => l.Contains("stopping now", StringComparison.Ordinal) || l.Contains("aborted", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_Http_routes_idle_connections_do_not_hold_up_the_stop()
    {
        await using var server = await Http.HttpTestServer.StartAsync();
        var dir = Path.Combine(Path.GetTempPath(), "bindproxy-shutdown-" + Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(dir);
        await File.WriteAllTextAsync(Path.Combine(dir, "appsettings.json"),
            $$"""{ "BindProxy": { "DrainTimeout": "00:00:20", "Routes": { "web": { "Listen": "127.0.0.1:0", "Upstream": "{{server.Address}}", "Source": "127.0.0.2", "Protocol": "Http" } } } }""");
        await using var proxy = ProxyProcess.Start(dir);
        var line = await proxy.WaitForLineAsync("Route web listening on ", Prompt);
        var endpoint = System.Net.IPEndPoint.Parse(line[(line.IndexOf(" listening on ", StringComparison.Ordinal) + 14)..].Split(' ')[0]);

        // A keep-alive client connection and a pooled upstream connection, both idle.
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = new Uri($"http://{endpoint}/") };
        Assert.Equal(System.Net.HttpStatusCode.OK, (await http.GetAsync("whoami")).StatusCode);

        var stopwatch = Stopwatch.StartNew();
        proxy.Terminate();
        Assert.Equal(0, await proxy.WaitForExitAsync(Prompt));
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(5), $"the stop took {stopwatch.Elapsed}; nothing was busy");
        Assert.DoesNotContain(proxy.Lines, l => l.Contains("still open", StringComparison.Ordinal));
    }
}
