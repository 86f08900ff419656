using System.Net;
using System.Net.Sockets;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Tests.Http;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Admin;

/// <summary>
/// <c>/metrics</c> after known traffic. OpenTelemetry's meter provider listens to every meter
/// named BindProxy in the process, and tests run several proxies in one process at once, so each
/// test uses route names of its own and reads values by route label.
/// </summary>
public sealed class MetricsTests
{
    [Fact]
    public async Task Bytes_connections_and_connect_latency_match_the_traffic_sent()
    {
        const string Route = "metrics-traffic";
        await using var upstream = TestServer.Echo();
        await using var admin = await AdminProxy.StartAsync(AdminProxy.Route(Route, upstream));

        using var first = await SocketExtensions.ConnectAsync(admin.Proxy.Endpoint(Route));
        using var second = await SocketExtensions.ConnectAsync(admin.Proxy.Endpoint(Route));
        await first.SendAsync(new byte[1000]);
        await first.ReadExactlyAsync(1000);
        await second.SendAsync(new byte[3000]);
        await second.ReadExactlyAsync(3000);

        // Live connections count before they close: bytes are read off the sockets at collection.
        // (A socket's counter moves just after its send returns, so the client may read first: wait.)
        await WaitForMetricAsync(admin, "bindproxy_forwarded_bytes_total", 4000, ("route", Route), ("direction", "to_client"));
        var live = await WaitForMetricAsync(admin, "bindproxy_forwarded_bytes_total", 4000, ("route", Route), ("direction", "to_upstream"));
        Assert.Equal(2, Value(live, "bindproxy_connections_active", ("route", Route)));
        Assert.Equal(2, Value(live, "bindproxy_connections_opened_total", ("route", Route)));
        Assert.Equal(2, Value(live, "bindproxy_upstream_connect_duration_seconds_count", ("route", Route), ("result", "connected")));
        Assert.Equal(2, Value(live, "bindproxy_upstream_connect_duration_seconds_bucket", ("route", Route), ("result", "connected"), ("le", "+Inf")));
        Assert.True(Value(live, "bindproxy_upstream_connect_duration_seconds_sum", ("route", Route), ("result", "connected")) > 0);

        // More traffic on one, then both close with a FIN from the client.
        await first.SendAsync(new byte[500]);
        await first.ReadExactlyAsync(500);
        first.Shutdown(SocketShutdown.Send);
        second.Shutdown(SocketShutdown.Send);
        Assert.Empty(await first.ReadToEndAsync());
        Assert.Empty(await second.ReadToEndAsync());
        await admin.WaitForJsonAsync("api/connections", json => json.GetArrayLength() == 0);

        var closed = await admin.GetTextAsync("metrics");
        Assert.Equal(4500, Value(closed, "bindproxy_forwarded_bytes_total", ("route", Route), ("direction", "to_upstream")));
        Assert.Equal(4500, Value(closed, "bindproxy_forwarded_bytes_total", ("route", Route), ("direction", "to_client")));
        Assert.Equal(0, Value(closed, "bindproxy_connections_active", ("route", Route)));
        Assert.Equal(2, Value(closed, "bindproxy_connections_opened_total", ("route", Route)));
        // Both sides sent FIN; which one the proxy saw end first can go either way.
        Assert.Equal(2, (Value(closed, "bindproxy_connections_closed_total", ("route", Route), ("reason", "client_closed")) ?? 0) +
            (Value(closed, "bindproxy_connections_closed_total", ("route", Route), ("reason", "upstream_closed")) ?? 0));
        Assert.Equal(2, PrometheusText.Samples(closed).Where(s => s.Name == "bindproxy_connections_closed_total" && s.Labels["route"] == Route).Sum(s => s.Value));
    }

    [Fact]
    public async Task Http_routes_count_their_upstream_connections_bytes_and_response_codes_on_the_Tcp_series()
    {
        const string Route = "metrics-http";
        const string Refused = "metrics-http-refused";
        await using var server = await HttpTestServer.StartAsync();
        await using var admin = await AdminProxy.StartAsync(
            new RouteConfig { Name = Route, Listen = "127.0.0.1:0", Upstream = server.Address, Source = "127.0.0.7", Protocol = "Http" },
            new RouteConfig { Name = Refused, Listen = "127.0.0.1:0", Upstream = $"127.0.0.1:{HttpRouteTests.FreePort()}", Source = "127.0.0.7", Protocol = "Http" });
        using var client = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = AdminProxy.Timeout };
        string Url(string route, string path) => $"http://{admin.Proxy.Endpoint(route)}/{path}";
        var cancel = TestContext.Current.CancellationToken;

        // Two requests over one kept-alive upstream connection.
        using (var ok = await client.GetAsync(Url(Route, "whoami"), cancel))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        using (var missing = await client.GetAsync(Url(Route, "missing"), cancel))
        {
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }

        var text = await WaitForMetricAsync(admin, "bindproxy_http_responses_total", 1, ("route", Route), ("code", "404"), ("from", "upstream"));
        Assert.Equal(1, Value(text, "bindproxy_http_responses_total", ("route", Route), ("code", "200"), ("from", "upstream")));
        Assert.Equal(1, Value(text, "bindproxy_connections_active", ("route", Route)));
        Assert.Equal(1, Value(text, "bindproxy_connections_opened_total", ("route", Route)));
        Assert.Equal(1, Value(text, "bindproxy_upstream_connect_duration_seconds_count", ("route", Route), ("result", "connected")));
        Assert.True(Value(text, "bindproxy_forwarded_bytes_total", ("route", Route), ("direction", "to_upstream")) > 0, text);
        Assert.True(Value(text, "bindproxy_forwarded_bytes_total", ("route", Route), ("direction", "to_client")) > 0, text);

        // The status page's sources: the route is active, its upstream connection is a live connection from the route's source.
        var routes = await admin.GetJsonAsync("api/routes");
        Assert.Equal(1, routes.EnumerateArray().Single(r => r.GetProperty("name").GetString() == Route).GetProperty("activeConnections").GetInt32());
        var connection = (await admin.GetJsonAsync("api/connections")).EnumerateArray().Single(c => c.GetProperty("route").GetString() == Route);
        Assert.StartsWith("127.0.0.7:", connection.GetProperty("source").GetString(), StringComparison.Ordinal);
        Assert.Equal(server.Address, connection.GetProperty("upstream").GetString());
        Assert.Equal(admin.Proxy.Endpoint(Route).ToString(), connection.GetProperty("listener").GetString());
        Assert.True(connection.GetProperty("bytesToClient").GetInt64() > 0);

        // The upstream ends the connection: it leaves the active count and is counted as closed.
        using (var bye = await client.GetAsync(Url(Route, "close"), cancel))
        {
            Assert.Equal(HttpStatusCode.OK, bye.StatusCode);
        }

        var closed = await WaitForMetricAsync(admin, "bindproxy_connections_active", 0, ("route", Route));
        Assert.Equal(1, PrometheusText.Samples(closed).Where(s => s.Name == "bindproxy_connections_closed_total" && s.Labels["route"] == Route).Sum(s => s.Value));
        Assert.Equal(2, Value(closed, "bindproxy_http_responses_total", ("route", Route), ("code", "200"), ("from", "upstream")));

        // A refused upstream: the connect failure on the Tcp series, and the proxy's own 502.
        using (var refused = await client.GetAsync(Url(Refused, "whoami"), cancel))
        {
            Assert.Equal(HttpStatusCode.BadGateway, refused.StatusCode);
        }

        var failed = await WaitForMetricAsync(admin, "bindproxy_http_responses_total", 1, ("route", Refused), ("code", "502"), ("from", "proxy"));
        Assert.Equal(1, Value(failed, "bindproxy_upstream_connect_failures_total", ("route", Refused), ("error", "refused")));
        Assert.Null(Value(failed, "bindproxy_connections_opened_total", ("route", Refused)));
    }

    [Fact]
    public async Task A_proxys_metrics_are_its_own_when_another_runs_in_the_same_process()
    {
        // Meters are found by name across the whole process: two hosts (tests in parallel, an
        // application embedding the proxy) must not show each other's routes or counts.
        await using var upstream = TestServer.Echo();
        await using var mine = await AdminProxy.StartAsync(AdminProxy.Route("metrics-mine", upstream));
        await using var other = await AdminProxy.StartAsync(AdminProxy.Route("metrics-other", upstream));
        using (var client = await SocketExtensions.ConnectAsync(other.Proxy.Endpoint("metrics-other")))
        {
            await client.SendAsync(new byte[] { 1 });
            await client.ReadExactlyAsync(1);
        }

        await WaitForMetricAsync(other, "bindproxy_connections_opened_total", 1, ("route", "metrics-other"));
        var samples = PrometheusText.Samples(await mine.GetTextAsync("metrics"));
        Assert.Contains(samples, s => s.Name == "bindproxy_connections_active" && s.Labels["route"] == "metrics-mine");
        Assert.DoesNotContain(samples, s => s.Labels.TryGetValue("route", out var route) && route == "metrics-other");
    }

    [Fact]
    public async Task Connect_failures_are_counted_by_error()
    {
        const string Route = "metrics-refused";
        int closedPort;
        await using (var gone = TestServer.Echo())
        {
            closedPort = gone.Endpoint.Port;
        }

        await using var admin = await AdminProxy.StartAsync(new RouteConfig
        {
            Name = Route, Listen = "127.0.0.1:0", Upstream = $"127.0.0.1:{closedPort}", Source = "127.0.0.2",
        });

        for (int i = 0; i < 2; i++)
        {
            await ConnectAndWaitForCloseAsync(admin.Proxy.Endpoint(Route));
        }

        await admin.Proxy.Logs.WaitForAsync(AdminProxy.Timeout, "connect refused");
        var text = await WaitForMetricAsync(admin, "bindproxy_upstream_connect_failures_total", 2, ("route", Route), ("error", "refused"));
        Assert.Equal(2, Value(text, "bindproxy_upstream_connect_duration_seconds_count", ("route", Route), ("result", "refused")));
        Assert.Null(Value(text, "bindproxy_connections_opened_total", ("route", Route)));
    }

    [Fact]
    public async Task Source_pool_exhaustion_is_counted()
    {
        const string Route = "metrics-exhausted";
        await using var upstream = TestServer.Echo();
        var dead = TestAddresses.Unassigned(2);
        Assert.True(UpstreamSpec.TryParse(upstream.Address, out var up, out var e1), e1);
        Assert.True(AddressSet.TryParse($"{dead[0]},{dead[1]}", out var sources, out var e2), e2);
        Assert.True(EndpointSpec.TryParse("127.0.0.1:0", allowPortZero: true, out var listen, out var e3), e3);
        var route = new RouteModel { Name = Route, Listen = listen, Upstream = up, Sources = new SourcePool(sources), ConnectTimeout = TimeSpan.FromSeconds(5) };
        await using var admin = await AdminProxy.StartAsync(new ProxyModel([route]));

        await ConnectAndWaitForCloseAsync(admin.Proxy.Endpoint(Route));

        var text = await WaitForMetricAsync(admin, "bindproxy_source_pool_exhausted_total", 1, ("route", Route));
        Assert.Equal(1, Value(text, "bindproxy_upstream_connect_failures_total", ("route", Route), ("error", "sources_exhausted")));
    }

    [Fact]
    public async Task Connections_over_MaxConnections_are_counted_as_rejected()
    {
        const string Route = "metrics-limit";
        await using var upstream = TestServer.Echo();
        await using var admin = await AdminProxy.StartAsync(AdminProxy.Route(Route, upstream) with { MaxConnections = "1" });

        using var kept = await SocketExtensions.ConnectAsync(admin.Proxy.Endpoint(Route));
        await kept.SendAsync(new byte[1]);
        await kept.ReadExactlyAsync(1);
        await ConnectAndWaitForCloseAsync(admin.Proxy.Endpoint(Route));

        var text = await WaitForMetricAsync(admin, "bindproxy_connections_rejected_total", 1, ("route", Route), ("reason", "max_connections"));
        Assert.Equal(1, Value(text, "bindproxy_connections_active", ("route", Route)));
    }

    [Fact]
    public async Task Metrics_are_in_Prometheus_text_format_with_help_and_type_lines()
    {
        await using var upstream = TestServer.Echo();
        await using var admin = await AdminProxy.StartAsync(AdminProxy.Route("metrics-format", upstream));
        using var client = await SocketExtensions.ConnectAsync(admin.Proxy.Endpoint("metrics-format"));
        await client.SendAsync(new byte[1]);
        await client.ReadExactlyAsync(1);

        using var response = await admin.Http.GetAsync("metrics").WaitAsync(AdminProxy.Timeout);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync();
        Assert.Contains("# TYPE bindproxy_forwarded_bytes_total counter", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE bindproxy_connections_active gauge", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE bindproxy_upstream_connect_duration_seconds histogram", text, StringComparison.Ordinal);
        Assert.Contains("# HELP bindproxy_connections_opened_total ", text, StringComparison.Ordinal);
        Assert.Contains("service_name=\"bindproxy\"", text, StringComparison.Ordinal);
    }

    /// <summary>A connection the proxy closes at once; its reset may already arrive while connecting.</summary>
    private static async Task ConnectAndWaitForCloseAsync(IPEndPoint endpoint)
    {
        try
        {
            using var client = await SocketExtensions.ConnectAsync(endpoint);
            await client.WaitForCloseAsync(TimeSpan.FromSeconds(5));
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
        }
    }

    private static double? Value(string text, string name, params (string, string)[] labels) => PrometheusText.Value(text, name, labels);

    /// <summary>Scrapes until the sample reaches <paramref name="expected"/>; returns that scrape.</summary>
    internal static async Task<string> WaitForMetricAsync(AdminProxy admin, string name, double expected, params (string, string)[] labels)
    {
        var (_, text) = await Poll.UntilAsync(
            async () =>
            {
                var text = await admin.GetTextAsync("metrics");
                return (Value: Value(text, name, labels), Text: text);
            },
            scrape => scrape.Value == expected,
            $"{name}{{{string.Join(",", labels)}}} to be {expected}",
            AdminProxy.Timeout);
        return text;
    }
}
