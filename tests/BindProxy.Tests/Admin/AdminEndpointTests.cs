using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Admin;

/// <summary>The admin endpoint's HTTP surface over real sockets: a proxy, an upstream and clients on loopback.</summary>
public sealed class AdminEndpointTests
{
    [Fact]
    public async Task Healthz_answers_ok()
    {
        await using var upstream = TestServer.Echo();
        await using var admin = await AdminProxy.StartAsync(AdminProxy.Route("health", upstream));

        using var response = await admin.Http.GetAsync("healthz").WaitAsync(AdminProxy.Timeout);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("ok\n", await response.Content.ReadAsStringAsync());
        Assert.True(IPAddress.IsLoopback(admin.Admin.Address));
    }

    [Fact]
    public async Task Routes_list_each_route_with_its_bound_endpoint_and_filters()
    {
        await using var upstream = TestServer.Echo();
        await using var admin = await AdminProxy.StartAsync(
            AdminProxy.Route("alpha", upstream, source: "127.0.0.2-127.0.0.4") with { MaxConnections = "7" },
            AdminProxy.Route("beta", upstream, source: "127.0.0.5"));

        var routes = await admin.GetJsonAsync("api/routes");
        Assert.Equal(["alpha", "beta"], routes.EnumerateArray().Select(r => r.GetProperty("name").GetString()));

        var alpha = routes[0];
        Assert.Equal("Tcp", alpha.GetProperty("protocol").GetString());
        Assert.Equal("127.0.0.1:0", alpha.GetProperty("listen").GetString());
        Assert.Equal(admin.Proxy.Endpoint("alpha").ToString(), Assert.Single(alpha.GetProperty("bound").EnumerateArray()).GetString());
        Assert.Equal(upstream.Address, alpha.GetProperty("upstream").GetString());
        Assert.Equal("127.0.0.2-127.0.0.4", alpha.GetProperty("sources").GetString());
        Assert.Equal(3, alpha.GetProperty("sourceCount").GetInt64());
        Assert.Equal(10, alpha.GetProperty("connectTimeoutSeconds").GetDouble());
        Assert.Equal(7, alpha.GetProperty("maxConnections").GetInt32());
        Assert.Equal(0, alpha.GetProperty("activeConnections").GetInt32());
        Assert.Equal(JsonValueKind.Null, alpha.GetProperty("parent").ValueKind);
        Assert.Equal($"ip.addr in {{127.0.0.2..127.0.0.4}} && tcp.port=={upstream.Endpoint.Port}", alpha.GetProperty("wiresharkFilter").GetString());
        Assert.Equal($"tshark -i lo -Y 'ip.addr in {{127.0.0.2..127.0.0.4}} && tcp.port=={upstream.Endpoint.Port}'", alpha.GetProperty("tsharkCommand").GetString());
        Assert.Equal($"ip.addr==127.0.0.5 && tcp.port=={upstream.Endpoint.Port}", routes[1].GetProperty("wiresharkFilter").GetString());
    }

    [Fact]
    public async Task Connections_show_a_live_connection_with_its_source_address_bytes_and_state()
    {
        // An upstream that answers "pong" to "ping" and keeps its side open after the client's FIN.
        await using var upstream = TestServer.Start(async (socket, ct) =>
        {
            var buffer = new byte[4];
            await socket.ReceiveAsync(buffer, SocketFlags.None, ct);
            await socket.SendAsync("pong!"u8.ToArray(), SocketFlags.None, ct);
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, ct) > 0)
            {
            }

            await Task.Delay(Timeout.Infinite, ct);
        });
        await using var admin = await AdminProxy.StartAsync(AdminProxy.Route("conns", upstream, source: "127.0.0.2"));

        var sinceConnect = System.Diagnostics.Stopwatch.StartNew();
        using var client = await SocketExtensions.ConnectAsync(admin.Proxy.Endpoint("conns"));
        await client.SendAsync("ping"u8.ToArray());
        await client.ReadExactlyAsync(5);

        // A socket's byte counter moves just after its send returns, so the client may read first.
        var connections = await admin.WaitForJsonAsync("api/connections",
            json => json.GetArrayLength() == 1 && json[0].GetProperty("bytesToClient").GetInt64() == 5);
        var connection = connections[0];
        Assert.True(upstream.Accepted.TryPeek(out var seenByUpstream));
        Assert.Equal("conns", connection.GetProperty("route").GetString());
        Assert.Equal(client.LocalEndPoint!.ToString(), connection.GetProperty("client").GetString());
        Assert.Equal(admin.Proxy.Endpoint("conns").ToString(), connection.GetProperty("listener").GetString());
        Assert.Equal("127.0.0.1", connection.GetProperty("clientIdentity").GetString());
        Assert.Equal(JsonValueKind.Null, connection.GetProperty("kafkaClientId").ValueKind);
        Assert.Equal(seenByUpstream.ToString(), connection.GetProperty("source").GetString());
        Assert.StartsWith("127.0.0.2:", connection.GetProperty("source").GetString(), StringComparison.Ordinal);
        Assert.Equal(upstream.Endpoint.ToString(), connection.GetProperty("upstream").GetString());
        Assert.Equal(4, connection.GetProperty("bytesToUpstream").GetInt64());
        Assert.Equal(5, connection.GetProperty("bytesToClient").GetInt64());
        // Its age is a clock that started with it (to the millisecond): within the test's own, and running.
        double age = connection.GetProperty("ageSeconds").GetDouble();
        Assert.InRange(age, 0, sinceConnect.Elapsed.TotalSeconds + 0.001);
        await admin.WaitForJsonAsync("api/connections", json => json.GetArrayLength() == 1 && json[0].GetProperty("ageSeconds").GetDouble() > age);
        Assert.Equal("open", connection.GetProperty("state").GetString());
        Assert.Equal($"ip.addr==127.0.0.2 && tcp.port=={seenByUpstream.Port}", connection.GetProperty("wiresharkFilter").GetString());
        Assert.Equal($"connection={connection.GetProperty("id").GetInt64()}", connection.GetProperty("captureQuery").GetString());

        var route = (await admin.GetJsonAsync("api/routes"))[0];
        Assert.Equal(1, route.GetProperty("activeConnections").GetInt32());

        client.Shutdown(SocketShutdown.Send);
        await admin.WaitForJsonAsync("api/connections",
            json => json.GetArrayLength() == 1 && json[0].GetProperty("state").GetString() == "half-closed by client");

        client.Close();
        await upstream.DisposeAsync();
        await admin.WaitForJsonAsync("api/connections", json => json.GetArrayLength() == 0);
    }

    [Fact]
    public async Task Assignments_group_live_connections_by_client_and_source_address()
    {
        await using var upstream = TestServer.Echo();
        await using var admin = await AdminProxy.StartAsync(AdminProxy.Route("assign", upstream, source: "127.0.0.2-127.0.0.3"));

        var clients = new List<Socket>();
        try
        {
            for (int i = 0; i < 3; i++)
            {
                var client = await SocketExtensions.ConnectAsync(admin.Proxy.Endpoint("assign"));
                clients.Add(client);
                await client.SendAsync(new byte[10]);
                await client.ReadExactlyAsync(10);
            }

            var assignments = await admin.WaitForJsonAsync("api/assignments",
                json => json.EnumerateArray().Sum(a => a.GetProperty("bytesToClient").GetInt64() + a.GetProperty("bytesToUpstream").GetInt64()) == 60);
            Assert.Equal(2, assignments.GetArrayLength());
            int port = upstream.Endpoint.Port;

            var first = assignments[0];
            Assert.Equal("127.0.0.1", first.GetProperty("client").GetString());
            Assert.Equal("client-address", first.GetProperty("identityKind").GetString());
            Assert.Equal("127.0.0.2", first.GetProperty("source").GetString());
            Assert.Equal(["assign"], first.GetProperty("routes").EnumerateArray().Select(r => r.GetString()));
            Assert.Equal([port], first.GetProperty("upstreamPorts").EnumerateArray().Select(p => p.GetInt32()));
            Assert.Equal(2, first.GetProperty("connections").GetInt32());
            Assert.Equal(20, first.GetProperty("bytesToUpstream").GetInt64());
            Assert.Equal(20, first.GetProperty("bytesToClient").GetInt64());
            Assert.Equal($"ip.addr==127.0.0.2 && tcp.port=={port}", first.GetProperty("wiresharkFilter").GetString());
            Assert.Equal($"tshark -i lo -f 'host 127.0.0.2 and tcp port {port}'", first.GetProperty("tsharkCommand").GetString());
            Assert.Equal("source=127.0.0.2", first.GetProperty("captureQuery").GetString());

            var second = assignments[1];
            Assert.Equal("127.0.0.3", second.GetProperty("source").GetString());
            Assert.Equal(1, second.GetProperty("connections").GetInt32());
            Assert.Equal("source=127.0.0.3", second.GetProperty("captureQuery").GetString());
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }

    [Fact]
    public async Task Status_combines_routes_connections_and_assignments()
    {
        await using var upstream = TestServer.Echo();
        var sinceStart = System.Diagnostics.Stopwatch.StartNew();
        await using var admin = await AdminProxy.StartAsync(AdminProxy.Route("status", upstream));
        using var client = await SocketExtensions.ConnectAsync(admin.Proxy.Endpoint("status"));
        await client.SendAsync(new byte[3]);
        await client.ReadExactlyAsync(3);

        var status = await admin.GetJsonAsync("api/status");
        // The uptime is a clock that started with the proxy (to a tenth of a second): within the test's own, and running.
        double uptime = status.GetProperty("uptimeSeconds").GetDouble();
        Assert.InRange(uptime, 0, sinceStart.Elapsed.TotalSeconds + 0.05);
        await admin.WaitForJsonAsync("api/status", json => json.GetProperty("uptimeSeconds").GetDouble() > uptime);
        Assert.True(status.GetProperty("time").GetDateTimeOffset() > DateTimeOffset.UtcNow.AddMinutes(-1));
        Assert.Equal(1, status.GetProperty("routes").GetArrayLength());
        Assert.Equal(1, status.GetProperty("connections").GetArrayLength());
        Assert.Equal(1, status.GetProperty("assignments").GetArrayLength());
    }

    [Fact]
    public async Task The_status_page_and_its_assets_are_served_from_the_proxy_itself()
    {
        await using var upstream = TestServer.Echo();
        await using var admin = await AdminProxy.StartAsync(AdminProxy.Route("page", upstream));

        using var page = await admin.Http.GetAsync("").WaitAsync(AdminProxy.Timeout);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        Assert.Contains("default-src 'self'", page.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains("src=\"/status.js\"", html, StringComparison.Ordinal);
        Assert.Contains("href=\"/status.css\"", html, StringComparison.Ordinal);

        foreach (var (path, type) in new[] { ("status.js", "text/javascript"), ("status.css", "text/css") })
        {
            using var asset = await admin.Http.GetAsync(path).WaitAsync(AdminProxy.Timeout);
            Assert.Equal(HttpStatusCode.OK, asset.StatusCode);
            Assert.Equal(type, asset.Content.Headers.ContentType?.MediaType);
            var text = await asset.Content.ReadAsStringAsync();
            Assert.DoesNotContain("http://", text, StringComparison.Ordinal);
            Assert.DoesNotContain("https://", text, StringComparison.Ordinal);
        }

        Assert.DoesNotContain("http://", html, StringComparison.Ordinal);
        Assert.DoesNotContain("https://", html, StringComparison.Ordinal);

        using var missing = await admin.Http.GetAsync("nothing-here.js").WaitAsync(AdminProxy.Timeout);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    /// <summary>Health checkers ask with HEAD: the answer is GET's status and headers, with no body.</summary>
    [Theory]
    [InlineData("/", "text/html")]
    [InlineData("/healthz", "text/plain")]
    [InlineData("/api/status", "application/json")]
    public async Task HEAD_is_answered_as_GET_without_the_body(string path, string type)
    {
        await using var upstream = TestServer.Echo();
        await using var admin = await AdminProxy.StartAsync(AdminProxy.Route("page", upstream));

        using var socket = await SocketExtensions.ConnectAsync(admin.Admin);
        await socket.SendAsync(System.Text.Encoding.ASCII.GetBytes($"HEAD {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
        var answer = System.Text.Encoding.ASCII.GetString(await socket.ReadToEndAsync());

        Assert.StartsWith("HTTP/1.1 200 OK\r\n", answer, StringComparison.Ordinal);
        Assert.Contains($"Content-Type: {type}", answer, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\n", answer, StringComparison.Ordinal); // the headers, and nothing after them
        if (path == "/")
        {
            Assert.Matches(@"Content-Length: [1-9]\d*\r\n", answer);
        }
    }

    [Fact]
    public async Task A_loopback_admin_endpoint_refuses_requests_for_other_host_names()
    {
        await using var upstream = TestServer.Echo();
        await using var admin = await AdminProxy.StartAsync(AdminProxy.Route("hosts", upstream));

        foreach (var (host, expected) in new[] { ("evil.example", HttpStatusCode.MisdirectedRequest), ("localhost", HttpStatusCode.OK), (admin.Admin.ToString(), HttpStatusCode.OK) })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "api/routes");
            request.Headers.Host = host;
            using var response = await admin.Http.SendAsync(request).WaitAsync(AdminProxy.Timeout);
            Assert.Equal(expected, response.StatusCode);
        }
    }
}
