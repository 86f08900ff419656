using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using BindProxy.Tests.Cli;
using BindProxy.Tests.Http;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Hosting;

/// <summary>Editing the configuration file while connections carry data.</summary>
public sealed class ReloadTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);

    private static string Config(string drain, params (string Name, string Listen, string Upstream, string Source)[] routes) =>
        "{ \"BindProxy\": { \"DrainTimeout\": \"" + drain + "\", \"Routes\": {" +
        string.Join(",", routes.Select(r => $"\"{r.Name}\": {{ \"Listen\": \"{r.Listen}\", \"Upstream\": \"{r.Upstream}\", \"Source\": \"{r.Source}\" }}")) +
        "} } }";

    /// <summary>The same, on a chosen forwarding engine.</summary>
    private static string Config(string engine, string drain, params (string Name, string Listen, string Upstream, string Source)[] routes) =>
        Config(drain, routes).Replace("{ \"BindProxy\": { ", "{ \"BindProxy\": { \"Engine\": \"" + engine + "\", ", StringComparison.Ordinal);

    private static int FreePort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    private static async Task EchoOnceAsync(Socket socket, byte value)
    {
        await socket.SendAsync(new[] { value });
        Assert.Equal(value, (await socket.ReadExactlyAsync(1, Prompt))[0]);
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task A_route_removed_and_added_again_under_its_name_does_not_share_the_draining_ones_count_or_limit(string engine)
    {
        await using var upstream = TestServer.Echo();
        int first = FreePort(), second = FreePort();
        string Route(int port) => "{ \"BindProxy\": { \"Engine\": \"" + engine + "\", \"DrainTimeout\": \"00:00:30\", \"Routes\": { " +
            $"\"a\": {{ \"Listen\": \"127.0.0.1:{port}\", \"Upstream\": \"{upstream.Address}\", \"Source\": \"127.0.0.2\", \"MaxConnections\": 1 }} }} }} }}";
        string None() => "{ \"BindProxy\": { \"Engine\": \"" + engine + "\", \"DrainTimeout\": \"00:00:30\", \"Routes\": { " +
            $"\"b\": {{ \"Listen\": \"127.0.0.1:0\", \"Upstream\": \"{upstream.Address}\", \"Source\": \"127.0.0.2\" }} }} }} }}";
        var file = Path.Combine(Path.GetTempPath(), $"bindproxy-reload-{Guid.NewGuid():n}.json");
        await File.WriteAllTextAsync(file, Route(first), TestContext.Current.CancellationToken);
        await using var proxy = await TestProxy.StartFromFileAsync(file);

        // The route's one connection stays open while the route is removed: it drains for 30 s.
        using var old = await SocketExtensions.ConnectAsync(new IPEndPoint(IPAddress.Loopback, first));
        await EchoOnceAsync(old, 1);
        await File.WriteAllTextAsync(file, None(), TestContext.Current.CancellationToken);
        await proxy.Logs.WaitForAsync(Prompt, "Reload: route a removed", "1 connection(s) may finish");

        // Added back under the same name, MaxConnections 1: a new route, with a count of its own.
        await File.WriteAllTextAsync(file, Route(second), TestContext.Current.CancellationToken);
        await proxy.Logs.WaitForAsync(Prompt, "Reload: route a added");
        using var fresh = await SocketExtensions.ConnectAsync(new IPEndPoint(IPAddress.Loopback, second));
        await EchoOnceAsync(fresh, 2);
        await EchoOnceAsync(old, 3);
        Assert.DoesNotContain(proxy.Logs.Messages, l => l.Contains("at MaxConnections", StringComparison.Ordinal));
        Assert.Equal(1, proxy.CountOf("a"));
    }

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task Routes_are_added_removed_and_changed_live_without_touching_the_others(string engine)
    {
        await using var upstream = TestServer.Echo();
        int portA = FreePort(), portB = FreePort(), portC = FreePort(), portD = FreePort();
        var file = Path.Combine(Path.GetTempPath(), $"bindproxy-reload-{Guid.NewGuid():n}.json");
        await File.WriteAllTextAsync(file, Config(engine, "00:00:02",
            ("a", $"127.0.0.1:{portA}", upstream.Address, "127.0.0.2"),
            ("b", $"127.0.0.1:{portB}", upstream.Address, "127.0.0.2"),
            ("d", $"127.0.0.1:{portD}", upstream.Address, "127.0.0.2")));
        await using var proxy = await TestProxy.StartFromFileAsync(file);

        // A connection on the unchanged route carries data the whole time.
        using var onA = await SocketExtensions.ConnectAsync(new IPEndPoint(IPAddress.Loopback, portA));
        using var onB = await SocketExtensions.ConnectAsync(new IPEndPoint(IPAddress.Loopback, portB));
        await EchoOnceAsync(onB, 1);
        using var stop = new CancellationTokenSource();
        long pings = 0;
        var traffic = Task.Run(async () =>
        {
            // A ping after every line the proxy logs (the pings log nothing themselves), so the
            // traffic runs through each step of the reloads as the proxy takes it.
            int logged = 0;
            for (byte i = 0; !stop.IsCancellationRequested && pings < 100_000; i++)
            {
                await EchoOnceAsync(onA, i);
                pings++;
                await Poll.UntilAsync(() => stop.IsCancellationRequested || proxy.Logs.Entries.Count > logged, "the proxy to log a line", Prompt * 2);
                logged = proxy.Logs.Entries.Count;
            }
        });

        // Each step below makes the proxy log, so traffic on a goes on through it: its pings move on.
        long mark = pings;
        async Task TrafficWentOnAsync(string step)
        {
            var since = mark;
            await Poll.UntilAsync(() => traffic.IsFaulted || pings > since, $"a ping on route a after {step}", Prompt * 2);
            Assert.False(traffic.IsFaulted, traffic.Exception?.ToString());
            mark = pings;
        }

        await File.WriteAllTextAsync(file, Config(engine, "00:00:02",
            ("a", $"127.0.0.1:{portA}", upstream.Address, "127.0.0.2"),
            ("c", $"127.0.0.1:{portC}", upstream.Address, "127.0.0.4"),
            ("d", $"127.0.0.1:{portD}", upstream.Address, "127.0.0.3")));
        await proxy.Logs.WaitForAsync(Prompt, "Reload: route c added");
        await proxy.Logs.WaitForAsync(Prompt, "Reload: route b removed", "1 connection(s) may finish within 2 s");
        await proxy.Logs.WaitForAsync(Prompt, "Reload: route d changed: Source 127.0.0.2 → 127.0.0.3");
        await TrafficWentOnAsync("the reload");

        // Added: serves. Changed: new connections use the new source. Removed: no longer listens,
        // while its connection drains.
        using (var onC = await SocketExtensions.ConnectAsync(new IPEndPoint(IPAddress.Loopback, portC)))
        {
            await EchoOnceAsync(onC, 3);
        }

        using (var onD = await SocketExtensions.ConnectAsync(new IPEndPoint(IPAddress.Loopback, portD)))
        {
            await EchoOnceAsync(onD, 4);
        }

        Assert.Contains(upstream.Accepted, e => e.Address.Equals(IPAddress.Parse("127.0.0.4")));
        Assert.Contains(upstream.Accepted, e => e.Address.Equals(IPAddress.Parse("127.0.0.3")));
        var refused = await Assert.ThrowsAsync<SocketException>(() => SocketExtensions.ConnectAsync(new IPEndPoint(IPAddress.Loopback, portB)));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        await EchoOnceAsync(onB, 2);
        await TrafficWentOnAsync("connections on the added and the changed route");

        // After the drain timeout the removed route's connection is reset.
        Assert.Equal(SocketError.ConnectionReset, await onB.WaitForCloseAsync(Prompt));
        await proxy.Logs.WaitForAsync(Prompt, "Route b (removed): 1 connection(s) still open after the 2 s drain; aborted");
        await TrafficWentOnAsync("the removed route's drain");

        // An invalid edit is rejected with the startup errors and the running routes stay.
        await File.WriteAllTextAsync(file, Config(engine, "00:00:02",
            ("a", $"127.0.0.1:{portA}", upstream.Address, "127.0.0.2"),
            ("c", $"127.0.0.1:{portC}", "nowhere", "127.0.0.4")));
        await proxy.Logs.WaitForAsync(Prompt, "Reload rejected", "route 'c': Upstream: 'nowhere' has no port");
        await TrafficWentOnAsync("the rejected reload");
        using (var onC = await SocketExtensions.ConnectAsync(new IPEndPoint(IPAddress.Loopback, portC)))
        {
            await EchoOnceAsync(onC, 5);
        }

        using (var onD = await SocketExtensions.ConnectAsync(new IPEndPoint(IPAddress.Loopback, portD)))
        {
            await EchoOnceAsync(onD, 6);
        }

        await TrafficWentOnAsync("connections after the rejected reload");
        await stop.CancelAsync();
        await traffic.WaitAsync(Prompt);
        File.Delete(file);
    }

    [Fact]
    public async Task An_XForwarded_edit_is_applied_to_the_next_request()
    {
        await using var server = await HttpTestServer.StartAsync();
        var file = Path.Combine(Path.GetTempPath(), $"bindproxy-reload-{Guid.NewGuid():n}.json");
        string Http(string extra) => "{ \"BindProxy\": { \"Routes\": { \"web\": { \"Listen\": \"127.0.0.1:0\", \"Upstream\": \"" + server.Address +
            "\", \"Source\": \"127.0.0.2\", \"Protocol\": \"Http\"" + extra + " } } } }";
        await File.WriteAllTextAsync(file, Http(""), TestContext.Current.CancellationToken);
        try
        {
            await using var proxy = await TestProxy.StartFromFileAsync(file);
            using var client = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = new Uri($"http://{proxy.Endpoint("web")}/") };
            async Task<string?> ForwardedForAsync() =>
                (await client.GetFromJsonAsync<SeenRequest>("whoami", TestContext.Current.CancellationToken))!.XForwardedFor;
            Assert.Equal("127.0.0.1", await ForwardedForAsync());

            await File.WriteAllTextAsync(file, Http(", \"XForwarded\": false"), TestContext.Current.CancellationToken);
            await proxy.Logs.WaitForAsync(Prompt, "Reload: route web changed: XForwarded (default) → False");
            Assert.Null(await ForwardedForAsync());
            Assert.DoesNotContain(proxy.Logs.Messages, m => m.Contains("no route changed", StringComparison.Ordinal));
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>A file broken as an editor or a full disk may leave it.</summary>
    public static TheoryData<string, string, string> BrokenFiles() => new()
    {
        { "broken", "{ \"BindProxy\": {\n  \"Routes\": {\n    \"a\": { \"Listen\": \"127.0.0.1:1\" \"Upstream\": \"x\" }\n  }\n}\n}\n", "is not valid JSON: line 3, column 36: '\"' is invalid after a value" },
        { "truncated", "{ \"BindProxy\": {\n  \"Routes\": {\n    \"a\": { \"Listen\": ", "is not valid JSON: line 3, column 22: the file ends before the JSON does (4 object(s) or array(s) still open)" },
        { "empty", "", "is empty" },
        { "invalid values", "{ \"BindProxy\": { \"Routes\": { \"a\": { \"Listen\": \"127.0.0.1:70000\", \"Upstream\": \"127.0.0.1:9\", \"Source\": \"127.0.0.2\" } } } }",
            "route 'a': Listen: '127.0.0.1:70000' has port 70000, out of range 0-65535" },
    };

    [Theory]
    [MemberData(nameof(BrokenFiles))]
    public async Task A_broken_edit_is_logged_as_an_error_in_the_words_of_startup_and_the_running_routes_stay(string kind, string content, string expected)
    {
        TestContext.Current.TestOutputHelper?.WriteLine($"edit: {kind}");
        await using var upstream = TestServer.Echo();
        int port = FreePort();
        var file = Path.Combine(Path.GetTempPath(), $"bindproxy-reload-{Guid.NewGuid():n}.json");
        var good = Config("00:00:02", ("a", $"127.0.0.1:{port}", upstream.Address, "127.0.0.2"));
        await File.WriteAllTextAsync(file, good, TestContext.Current.CancellationToken);
        try
        {
            await using var proxy = await TestProxy.StartFromFileAsync(file);
            await File.WriteAllTextAsync(file, content, TestContext.Current.CancellationToken);
            var line = await proxy.Logs.WaitForAsync(Prompt, "Reload rejected, the running configuration stays: ", expected);
            Assert.Contains(proxy.Logs.Entries, e => e.Message == line && e.Level == Microsoft.Extensions.Logging.LogLevel.Error);

            // The same words as the command line prints for this file.
            var (exit, _, err) = await BindProxyCli.RunAsync(Path.GetTempPath(), "check", "--config", file);
            Assert.Equal(1, exit);
            Assert.Equal("error: " + line["Reload rejected, the running configuration stays: ".Length..], err.TrimEnd(), ignoreLineEndingDifferences: true);

            using (var client = await SocketExtensions.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port)))
            {
                await EchoOnceAsync(client, 7);
            }

            // Fixed again: the edit after it applies as usual.
            await File.WriteAllTextAsync(file, good.Replace("127.0.0.2", "127.0.0.3", StringComparison.Ordinal), TestContext.Current.CancellationToken);
            await proxy.Logs.WaitForAsync(Prompt, "Reload: route a changed: Source 127.0.0.2 → 127.0.0.3");
            Assert.DoesNotContain(proxy.Logs.Messages, m => m.Contains("Reload: route a removed", StringComparison.Ordinal));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Edits_above_the_routes_are_told_too_and_the_admin_keys_and_the_engine_wait_for_a_restart()
    {
        var file = Path.Combine(Path.GetTempPath(), $"bindproxy-reload-{Guid.NewGuid():n}.json");
        string With(string drain, string admin, string allow) => Config(drain, ("a", "127.0.0.1:0", "127.0.0.1:9", "127.0.0.2"))[..^1] +
            ", \"Admin\": { \"Listen\": \"" + admin + "\", \"AllowNonLoopback\": \"" + allow + "\" } }";
        await File.WriteAllTextAsync(file, With("00:00:02", "127.0.0.1:0", "false"), TestContext.Current.CancellationToken);
        try
        {
            await using var proxy = await TestProxy.StartFromFileAsync(file);
            await File.WriteAllTextAsync(file, With("00:00:03", "off", "true").Replace("{ \"BindProxy\": { ", "{ \"BindProxy\": { \"Engine\": \"pipes\", ", StringComparison.Ordinal), TestContext.Current.CancellationToken);
            await proxy.Logs.WaitForAsync(Prompt, "Reload: DrainTimeout 00:00:02 → 00:00:03 for routes removed and for shutdown from now on");
            await proxy.Logs.WaitForAsync(Prompt, "Reload: Admin:Listen 127.0.0.1:0 → off takes effect at the next restart");
            await proxy.Logs.WaitForAsync(Prompt, "Reload: BindProxy:Engine (default) → pipes takes effect at the next restart");
            await proxy.Logs.WaitForAsync(Prompt, "Reload: Admin:AllowNonLoopback false → true takes effect at the next restart");
            Assert.DoesNotContain(proxy.Logs.Messages, m => m.Contains("no route changed", StringComparison.Ordinal));
        }
        finally
        {
            File.Delete(file);
        }
    }
}
