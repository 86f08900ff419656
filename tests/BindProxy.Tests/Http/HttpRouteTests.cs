using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using BindProxy.Configuration;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Http;

/// <summary>Http routes end to end: a real proxy in front of a real Kestrel server, over loopback sockets.</summary>
public sealed class HttpRouteTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    internal static RouteConfig Route(string upstream, string source = "127.0.0.7", string? xForwarded = null, string? requestTimeout = null) => new()
    {
        Name = "test",
        Listen = "127.0.0.1:0",
        Upstream = upstream,
        Source = source,
        Protocol = "Http",
        XForwarded = xForwarded,
        RequestTimeout = requestTimeout,
    };

    internal static HttpClient Client(TestProxy proxy, Version? version = null) => new(new SocketsHttpHandler { UseProxy = false })
    {
        BaseAddress = new Uri($"http://{proxy.Endpoint()}/"),
        Timeout = Timeout,
        DefaultRequestVersion = version ?? HttpVersion.Version11,
        DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
    };

    private static void Print(HttpTestServer server)
    {
        foreach (var seen in server.Requests)
        {
            TestContext.Current.TestOutputHelper?.WriteLine($"server saw: {seen}");
        }
    }

    [Theory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task The_server_sees_the_route_source_address(string version)
    {
        await using var server = await HttpTestServer.StartAsync();
        await using var proxy = await TestProxy.StartAsync(Route(server.Address));
        using var client = Client(proxy, Version.Parse(version));

        using var response = await client.GetAsync("whoami", TestContext.Current.CancellationToken);
        Print(server);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(Version.Parse(version), response.Version);
        var seen = await response.Content.ReadFromJsonAsync<SeenRequest>(TestContext.Current.CancellationToken);
        Assert.Equal("127.0.0.7", seen!.RemoteAddress);
        Assert.Equal(server.Address, seen.Host);
        await proxy.Logs.WaitForAsync(Timeout, "test: upstream connection 127.0.0.7:", $"→ {server.Address} open");
        await proxy.Logs.WaitForAsync(Timeout, "test: 127.0.0.1 GET /whoami", "→ 200");
    }

    [Theory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task Large_streamed_bodies_pass_through_intact(string version)
    {
        const long size = 64L * 1024 * 1024;
        string expected = Payload.Sha256(size);
        await using var server = await HttpTestServer.StartAsync();
        await using var proxy = await TestProxy.StartAsync(Route(server.Address));
        using var client = Client(proxy, Version.Parse(version));

        using var upload = await client.PostAsync("sha256", new Payload.Content(size), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, upload.StatusCode);
        var digest = await upload.Content.ReadFromJsonAsync<BodyDigest>(TestContext.Current.CancellationToken);
        Assert.Equal(new BodyDigest(size, expected), digest);

        using var download = await client.GetAsync($"bytes?size={size}", HttpCompletionOption.ResponseHeadersRead, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, download.StatusCode);
        await using var body = await download.Content.ReadAsStreamAsync(TestContext.Current.CancellationToken);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var cts = new CancellationTokenSource(Timeout);
        var buffer = new byte[64 * 1024];
        long received = 0;
        int n;
        while ((n = await body.ReadAsync(buffer, cts.Token)) > 0)
        {
            hash.AppendData(buffer, 0, n);
            received += n;
        }

        Assert.Equal(size, received);
        Assert.Equal(expected, Convert.ToHexString(hash.GetHashAndReset()));
        Assert.NotEmpty(server.Requests);
        Assert.All(server.Requests, r => Assert.Equal("127.0.0.7", r.RemoteAddress));
    }

    [Theory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task A_websocket_echoes_through_the_route(string version)
    {
        await using var server = await HttpTestServer.StartAsync();
        await using var proxy = await TestProxy.StartAsync(Route(server.Address));
        using var cts = new CancellationTokenSource(Timeout);
        using var socket = new ClientWebSocket();
        using var invoker = new HttpMessageInvoker(new SocketsHttpHandler { UseProxy = false });

        // HTTP/2: an extended CONNECT on a cleartext HTTP/2 connection; the upstream gets an HTTP/1.1 upgrade.
        socket.Options.HttpVersion = Version.Parse(version);
        socket.Options.HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        await socket.ConnectAsync(new Uri($"ws://{proxy.Endpoint()}/ws"), invoker, cts.Token);
        var messages = new[] { "hello"u8.ToArray(), RandomNumberGenerator.GetBytes(1024 * 1024), "bye"u8.ToArray() };
        foreach (var message in messages)
        {
            await socket.SendAsync(message, WebSocketMessageType.Binary, endOfMessage: true, cts.Token);
            var echo = new MemoryStream();
            var buffer = new byte[64 * 1024];
            ValueWebSocketReceiveResult result;
            do
            {
                result = await socket.ReceiveAsync(buffer.AsMemory(), cts.Token);
                echo.Write(buffer, 0, result.Count);
            }
            while (!result.EndOfMessage);

            Assert.Equal(message, echo.ToArray());
        }

        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", cts.Token);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);
        var seen = Assert.Single(server.Requests);
        Assert.Equal("127.0.0.7", seen.RemoteAddress);
    }

    [Fact]
    public async Task An_upstream_that_is_down_gives_502_naming_the_route_and_the_error()
    {
        int port = FreePort();
        await using var proxy = await TestProxy.StartAsync(Route($"127.0.0.1:{port}"));
        using var client = Client(proxy);

        using var response = await client.GetAsync("anything", TestContext.Current.CancellationToken);
        string body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.StartsWith($"BindProxy route 'test': upstream 127.0.0.1:{port}: connect refused: 127.0.0.1:{port} from 127.0.0.7", body, StringComparison.Ordinal);
        await proxy.Logs.WaitForAsync(Timeout, "test: 127.0.0.1 GET /anything failed", "connect refused");
    }

    [Fact]
    public async Task A_silent_upstream_gives_504_after_RequestTimeout()
    {
        await using var server = await HttpTestServer.StartAsync();
        await using var proxy = await TestProxy.StartAsync(Route(server.Address, requestTimeout: "00:00:01"));
        using var client = Client(proxy);

        var started = DateTime.UtcNow;
        using var response = await client.GetAsync("silent", TestContext.Current.CancellationToken);
        var elapsed = DateTime.UtcNow - started;
        string body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Contains("BindProxy route 'test'", body, StringComparison.Ordinal);
        Assert.Contains("RequestTimeout 1 s", body, StringComparison.Ordinal);
        Assert.InRange(elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(15));
    }

    [Theory]
    [InlineData(null, "127.0.0.1")]
    [InlineData("true", "127.0.0.1")]
    [InlineData("false", null)]
    public async Task X_Forwarded_For_follows_the_route_setting(string? xForwarded, string? expected)
    {
        await using var server = await HttpTestServer.StartAsync();
        await using var proxy = await TestProxy.StartAsync(Route(server.Address, xForwarded: xForwarded));
        using var client = Client(proxy);

        var seen = await client.GetFromJsonAsync<SeenRequest>("whoami", TestContext.Current.CancellationToken);

        Assert.Equal(expected, seen!.XForwardedFor);
        Assert.Equal("127.0.0.7", seen.RemoteAddress);
    }

    [Fact]
    public async Task Per_client_assignment_gives_each_client_address_its_own_source_for_all_its_requests()
    {
        await using var server = await HttpTestServer.StartAsync();
        await using var proxy = await TestProxy.StartAsync(Route(server.Address, source: "127.0.0.8-127.0.0.11") with { Assign = "client-address" });

        // Two clients, each bound to its own loopback address, each making several requests.
        HttpClient From(string address) => new(new SocketsHttpHandler
        {
            UseProxy = false,
            ConnectCallback = async (context, ct) =>
            {
                var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
                socket.Bind(new IPEndPoint(IPAddress.Parse(address), 0));
                await socket.ConnectAsync(proxy.Endpoint(), ct);
                return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
            },
        })
        {
            BaseAddress = new Uri($"http://{proxy.Endpoint()}/"),
            Timeout = Timeout,
        };

        using var first = From("127.0.0.90");
        using var second = From("127.0.0.91");
        var sources = new Dictionary<string, HashSet<string>> { ["a"] = [], ["b"] = [] };
        for (int i = 0; i < 3; i++)
        {
            foreach (var (name, client) in new[] { ("a", first), ("b", second) })
            {
                var seen = await client.GetFromJsonAsync<SeenRequest>("whoami", TestContext.Current.CancellationToken);
                sources[name].Add(seen!.RemoteAddress);
            }
        }

        Assert.Single(sources["a"]);
        Assert.Single(sources["b"]);
        Assert.NotEqual(sources["a"].Single(), sources["b"].Single());
        await proxy.Logs.WaitForAsync(Timeout, "client 127.0.0.90 →", "Wireshark: ip.addr==");
    }

    [Fact]
    public async Task Upstream_connections_spread_over_the_source_pool()
    {
        await using var server = await HttpTestServer.StartAsync();
        await using var proxy = await TestProxy.StartAsync(Route(server.Address, source: "127.0.0.8-127.0.0.9"));
        using var client = Client(proxy);

        // Two requests the server holds until both have arrived need two upstream connections at once.
        var requests = Enumerable.Range(0, 2).Select(_ => client.GetFromJsonAsync<SeenRequest>("gather?n=2", TestContext.Current.CancellationToken)).ToList();
        var seen = await Task.WhenAll(requests).WaitAsync(Timeout);

        Assert.Equal(["127.0.0.8", "127.0.0.9"], seen.Select(s => s!.RemoteAddress).Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task First_bytes_arriving_one_at_a_time_still_choose_the_right_protocol(string version)
    {
        if (!OperatingSystem.IsLinux())
        {
            ExternalTool.Unavailable("sending one byte at a time waits for the proxy to read each, which /proc/net/tcp shows");
        }

        await using var server = await HttpTestServer.StartAsync();
        await using var proxy = await TestProxy.StartAsync(Route(server.Address));
        using var socket = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        var (clientEnd, proxyEnd) = ((IPEndPoint)socket.LocalEndPoint!, proxy.Endpoint());

        byte[] opening = version == "2.0"
            ? [.. "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8, 0, 0, 0, 4, 0, 0, 0, 0, 0] // preface, then an empty SETTINGS frame
            : [.. "GET /whoami HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"u8];
        for (int i = 0; i < opening.Length; i++)
        {
            await socket.SendAsync(opening.AsMemory(i, 1), SocketFlags.None, TestContext.Current.CancellationToken);

            // Each byte arrives on its own, which is what the protocol detection is tested with: the
            // next goes once the proxy has taken this one (acknowledged, and nothing left unread).
            if (i < 30)
            {
                await Poll.UntilAsync(() => SocketTable.Read() is var table &&
                    table.Any(e => e.Local.Equals(clientEnd) && e.Remote.Equals(proxyEnd) && e.TxQueue == 0) &&
                    table.Any(e => e.Local.Equals(proxyEnd) && e.Remote.Equals(clientEnd) && e.RxQueue == 0),
                    $"the proxy to read byte {i}");
            }
        }

        if (version == "2.0")
        {
            // The server's first frame: its own SETTINGS (type 4 at offset 3 of the 9-byte frame header).
            var header = await socket.ReadExactlyAsync(9);
            Assert.Equal(4, header[3]);
        }
        else
        {
            string response = System.Text.Encoding.ASCII.GetString(await socket.ReadToEndAsync());
            Assert.StartsWith("HTTP/1.1 200", response, StringComparison.Ordinal);
            Assert.Contains("127.0.0.7", response, StringComparison.Ordinal);
        }
    }

    internal static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
