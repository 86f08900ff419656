using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using BindProxy.Configuration;
using BindProxy.Tests.Capture;
using BindProxy.Tests.Http;
using BindProxy.Tests.Infrastructure;
using Microsoft.Playwright;

namespace BindProxy.Tests.Admin;

/// <summary>
/// The status page in a real headless Chromium (Debian's <c>chromium</c>), driven by Playwright
/// for .NET. Playwright's own browser builds are never downloaded: the system browser is launched
/// by path, and the Playwright driver ships inside the NuGet package.
/// </summary>
/// <remarks>
/// Runs alone: a browser takes most of a small machine's CPU for a few seconds, which would
/// stretch the timing of socket tests running beside it.
/// </remarks>
[Collection(nameof(RunsAlone))]
public sealed class StatusPageBrowserTests
{
    private static readonly string[] ChromiumArgs =
        ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];

    private const float Timeout = 15_000;

    [Fact]
    public async Task A_live_connection_appears_with_its_source_address_and_a_copyable_filter()
    {
        var chromium = ExternalTool.Require("chromium");
        await using var upstream = TestServer.Echo();
        await using var admin = await AdminProxy.StartAsync(
            AdminProxy.Route("orders", upstream, source: "127.0.0.2"),
            AdminProxy.Route("billing", upstream, source: "127.0.0.3-127.0.0.4"));
        int port = upstream.Endpoint.Port;

        using var first = await SocketExtensions.ConnectAsync(admin.Proxy.Endpoint("orders"));
        await first.SendAsync(new byte[2048]);
        await first.ReadExactlyAsync(2048);
        Assert.True(upstream.Accepted.TryPeek(out var firstSource));

        using var playwright = await Playwright.CreateAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = chromium,
            Headless = true,
            Args = ChromiumArgs,
            Timeout = 30_000,
        });
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1400, Height = 900 } });
        await context.GrantPermissionsAsync(["clipboard-read", "clipboard-write"], new BrowserContextGrantPermissionsOptions { Origin = admin.BaseAddress.GetLeftPart(UriPartial.Authority) });
        var page = await context.NewPageAsync();
        page.SetDefaultTimeout(Timeout);

        var requested = new ConcurrentBag<string>();
        var consoleErrors = new ConcurrentBag<string>();
        page.Request += (_, request) => requested.Add(request.Url);
        page.Console += (_, message) =>
        {
            if (message.Type == "error")
            {
                consoleErrors.Add(message.Text);
            }
        };

        await page.GotoAsync(admin.BaseAddress.ToString());
        Assert.Equal("BindProxy status", await page.TitleAsync());

        // The live connection, with the source address the upstream saw.
        var connectionRow = page.Locator($"#connections tbody tr[data-source='{firstSource}']");
        await connectionRow.WaitForAsync();
        var rowText = await connectionRow.InnerTextAsync();
        Assert.Contains("orders", rowText, StringComparison.Ordinal);
        Assert.Contains(firstSource.ToString(), rowText, StringComparison.Ordinal);
        Assert.Contains("open", rowText, StringComparison.Ordinal);
        Assert.Contains($"ip.addr==127.0.0.2 && tcp.port=={firstSource.Port}", rowText, StringComparison.Ordinal);

        // The client → 127.0.0.2 assignment with its Wireshark filter and tshark command.
        var wireshark = $"ip.addr==127.0.0.2 && tcp.port=={port}";
        var tshark = $"tshark -i lo -f 'host 127.0.0.2 and tcp port {port}'";
        var assignment = page.Locator("#assignments tbody tr[data-source='127.0.0.2']");
        await assignment.WaitForAsync();
        Assert.Contains(wireshark, await assignment.InnerTextAsync(), StringComparison.Ordinal);
        Assert.Contains(tshark, await assignment.InnerTextAsync(), StringComparison.Ordinal);

        // Copy puts exactly the filter on the clipboard.
        var copy = assignment.Locator($"button.copy[data-copy=\"{wireshark}\"]");
        await copy.ClickAsync();
        await Assertions.Expect(copy).ToHaveTextAsync("Copied");
        Assert.Equal(wireshark, await page.EvaluateAsync<string>("() => navigator.clipboard.readText()"));

        // Updated live: a second client on the other route shows up without a reload...
        using var second = await SocketExtensions.ConnectAsync(admin.Proxy.Endpoint("billing"));
        await second.SendAsync(new byte[10]);
        await second.ReadExactlyAsync(10);
        await page.Locator("#assignments tbody tr[data-source='127.0.0.3']").WaitForAsync();
        await page.Locator("#routes tbody tr[data-route='billing']").WaitForAsync();
        Assert.Contains("ip.addr in {127.0.0.3..127.0.0.4}", await page.Locator("#routes tbody tr[data-route='billing']").InnerTextAsync(), StringComparison.Ordinal);
        await Assertions.Expect(page.Locator("#sum-connections")).ToHaveTextAsync("2");

        var screenshot = Path.Combine(AppContext.BaseDirectory, "TestResults", "status-page.png");
        Directory.CreateDirectory(Path.GetDirectoryName(screenshot)!);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = screenshot, FullPage = true });
        TestContext.Current.TestOutputHelper?.WriteLine($"status page screenshot: {screenshot}");
        TestContext.Current.AddAttachment("status-page.png", await File.ReadAllBytesAsync(screenshot), "image/png");

        // ...and a closed one goes away.
        second.Shutdown(SocketShutdown.Send);
        await second.ReadToEndAsync();
        await page.Locator("#assignments tbody tr[data-source='127.0.0.3']").WaitForAsync(new LocatorWaitForOptions { State = WaitForSelectorState.Detached });
        await Assertions.Expect(page.Locator("#sum-connections")).ToHaveTextAsync("1");

        // Everything the page loaded came from the admin endpoint itself.
        var origin = admin.BaseAddress.GetLeftPart(UriPartial.Authority);
        Assert.All(requested, url => Assert.StartsWith(origin, url, StringComparison.Ordinal));
        Assert.Empty(consoleErrors);
        await context.CloseAsync();
    }

    /// <summary>
    /// Routes with long filters (a source list, a client on two upstream ports), an Http route and a
    /// half-closed connection, at a wide and a narrow window: every table fits its panel (nothing to
    /// scroll sideways, no column cut off) and filters and commands wrap only between their tokens.
    /// The screenshots are kept for a person to look at.
    /// </summary>
    [Fact]
    public async Task The_page_fits_1400_and_900_pixel_windows_and_wraps_filters_only_between_tokens()
    {
        var chromium = ExternalTool.Require("chromium");
        await using var echo = TestServer.Echo();
        await using var audit = TestServer.Echo();

        // Reads until the client's FIN and then holds its side open: the connection stays half-closed.
        await using var sink = TestServer.Start(async (socket, ct) =>
        {
            var buffer = new byte[4096];
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, ct) > 0)
            {
            }

            await Task.Delay(System.Threading.Timeout.Infinite, ct).ContinueWith(_ => { }, TaskScheduler.Default);
        });
        await using var registry = await HttpTestServer.StartAsync();
        await using var admin = await AdminProxy.StartAsync(
            AdminProxy.Route("orders", echo, source: "127.0.0.2"),
            AdminProxy.Route("orders-audit", audit, source: "127.0.0.2"),
            AdminProxy.Route("billing", echo, source: "127.0.0.3-127.0.0.4"),
            AdminProxy.Route("analytics-replicas", sink, source: "127.0.0.5,127.0.0.9,127.0.0.12-127.0.0.14,127.0.0.20,127.0.0.31-127.0.0.33"),
            new RouteConfig { Name = "orders-schema-registry", Listen = "127.0.0.1:0", Upstream = registry.Address, Source = "127.0.0.6", Protocol = "Http" });

        var open = new List<Socket>();
        try
        {
            foreach (var route in new[] { "orders", "orders-audit", "billing", "analytics-replicas" })
            {
                var socket = await SocketExtensions.ConnectAsync(admin.Proxy.Endpoint(route));
                open.Add(socket);
                await socket.SendAsync(new byte[1500]);
                if (route != "analytics-replicas")
                {
                    await socket.ReadExactlyAsync(1500);
                }
            }

            open[^1].Shutdown(SocketShutdown.Send);
            using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = new Uri($"http://{admin.Proxy.Endpoint("orders-schema-registry")}/") };
            for (int i = 0; i < 2; i++)
            {
                using var response = await http.GetAsync("whoami", TestContext.Current.CancellationToken);
                response.EnsureSuccessStatusCode();
            }

            using var playwright = await Playwright.CreateAsync().WaitAsync(TimeSpan.FromSeconds(30));
            await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
            {
                ExecutablePath = chromium,
                Headless = true,
                Args = ChromiumArgs,
                Timeout = 30_000,
            });

            foreach (int width in new[] { 1400, 900 })
            {
                var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = width, Height = 900 } });
                var page = await context.NewPageAsync();
                page.SetDefaultTimeout(Timeout);
                await page.GotoAsync(admin.BaseAddress.ToString());
                await page.Locator("#connections tbody tr[data-route='orders-schema-registry']").WaitForAsync();
                await Assertions.Expect(page.Locator("#connections tbody tr")).ToHaveCountAsync(5);
                await Assertions.Expect(page.Locator("#connections tbody")).ToContainTextAsync("half-closed by client");
                await Assertions.Expect(page.Locator("#routes tbody tr[data-route='orders-schema-registry'] td.n")).ToHaveTextAsync("1");
                await Assertions.Expect(page.Locator("#assignments tbody")).ToContainTextAsync("tcp.port in {");

                var screenshot = Path.Combine(AppContext.BaseDirectory, "TestResults", $"status-page-{width}.png");
                Directory.CreateDirectory(Path.GetDirectoryName(screenshot)!);
                await page.ScreenshotAsync(new PageScreenshotOptions { Path = screenshot, FullPage = true });
                TestContext.Current.TestOutputHelper?.WriteLine($"status page at {width} px: {screenshot}");
                TestContext.Current.AddAttachment($"status-page-{width}.png", await File.ReadAllBytesAsync(screenshot), "image/png");

                var overflowing = await page.EvaluateAsync<string[]>(OverflowingPanels);
                Assert.True(overflowing.Length == 0, $"at {width} px these scroll sideways: {string.Join("; ", overflowing)}");
                var broken = await page.EvaluateAsync<string[]>(TokensBrokenAcrossLines);
                Assert.True(broken.Length == 0, $"at {width} px these filter tokens are split across lines: {string.Join("; ", broken)}");
                await context.CloseAsync();
            }
        }
        finally
        {
            foreach (var socket in open)
            {
                socket.Dispose();
            }
        }
    }

    /// <summary>
    /// Before the first answer the page says it is loading, not that nothing is there. At a 900 px
    /// window long route names (a Kafka route's broker listeners among them) stay whole, breaking
    /// after a slash at most, and the summary counts the configured routes apart from their
    /// broker listeners.
    /// </summary>
    [Fact]
    public async Task The_first_paint_says_loading_and_long_route_names_stay_whole_at_900_pixels()
    {
        var chromium = ExternalTool.Require("chromium");
        Kafka.MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = Demo.MockCluster.Create(3);
        await using var echo = TestServer.Echo();
        const string KafkaRoute = "shared-kafka";
        await using var admin = await AdminProxy.StartAsync(
            new RouteConfig { Name = KafkaRoute, Listen = "127.0.0.1:0", Upstream = cluster.BrokerAddresses[0], Source = "127.0.0.2", Protocol = "Kafka" },
            AdminProxy.Route("orders-postgres", echo, source: "127.0.0.5,127.0.0.9,127.0.0.12-127.0.0.14,127.0.0.20"));

        // A Kafka client that stays connected (its broker connections are rows too), and a Tcp one.
        using var kafka = new Confluent.Kafka.AdminClientBuilder(new Confluent.Kafka.AdminClientConfig
        {
            BootstrapServers = admin.Proxy.Endpoint(KafkaRoute).ToString(),
            ClientId = "orders-reconciliation",
        }).Build();
        Assert.Equal(3, kafka.GetMetadata(TimeSpan.FromSeconds(30)).Brokers.Count);
        await admin.WaitForJsonAsync("api/routes", routes => routes.GetArrayLength() == 5);
        using var tcp = await SocketExtensions.ConnectAsync(admin.Proxy.Endpoint("orders-postgres"));
        await tcp.SendAsync(new byte[100]);
        await tcp.ReadExactlyAsync(100);

        using var playwright = await Playwright.CreateAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = chromium,
            Headless = true,
            Args = ChromiumArgs,
            Timeout = 30_000,
        });
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 900, Height = 900 } });
        var page = await context.NewPageAsync();
        page.SetDefaultTimeout(Timeout);

        // The first answer is held back: the page as it is before it.
        var release = new TaskCompletionSource();
        int requests = 0;
        await page.RouteAsync("**/api/status", async route =>
        {
            if (Interlocked.Increment(ref requests) == 1)
            {
                await release.Task;
            }

            await route.ContinueAsync();
        });
        await page.GotoAsync(admin.BaseAddress.ToString());
        await Poll.UntilAsync(() => Volatile.Read(ref requests) > 0, "the page's first request for /api/status", TimeSpan.FromSeconds(15));
        foreach (var empty in new[] { "#assignments-empty", "#connections-empty", "#routes-empty" })
        {
            await Assertions.Expect(page.Locator(empty)).ToHaveTextAsync("Loading…");
        }

        release.SetResult();
        await page.Locator($"#routes tbody tr[data-route='{KafkaRoute}/broker-3']").WaitForAsync();
        await page.Locator($"#connections tbody tr[data-route^='{KafkaRoute}/broker-']").First.WaitForAsync();
        await Assertions.Expect(page.Locator("#routes-empty")).ToBeHiddenAsync();
        await Assertions.Expect(page.Locator("#sum-routes")).ToHaveTextAsync("2");
        await Assertions.Expect(page.Locator("#sum-routes-label")).ToHaveTextAsync("routes, 3 broker listeners");

        var screenshot = Path.Combine(AppContext.BaseDirectory, "TestResults", "status-page-route-names-900.png");
        Directory.CreateDirectory(Path.GetDirectoryName(screenshot)!);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = screenshot, FullPage = true });
        TestContext.Current.AddAttachment("status-page-route-names-900.png", await File.ReadAllBytesAsync(screenshot), "image/png");

        var broken = await page.EvaluateAsync<string[]>(RouteNamesBrokenInsideAWord);
        Assert.True(broken.Length == 0, $"at 900 px these route names break inside a word: {string.Join("; ", broken)}");
        var overflowing = await page.EvaluateAsync<string[]>(OverflowingPanels);
        Assert.True(overflowing.Length == 0, $"at 900 px these scroll sideways: {string.Join("; ", overflowing)}");
        await context.CloseAsync();
    }

    [Fact]
    public async Task A_Kafka_client_s_panel_shows_its_requests_per_API_latency_errors_and_last_requests_at_1400_and_900_pixels()
    {
        var chromium = ExternalTool.Require("chromium");
        Kafka.MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = BindProxy.Demo.MockCluster.Create(1);
        cluster.CreateTopic("panel-orders", partitions: 2, replicationFactor: 1);
        await using var admin = await AdminProxy.StartAsync(KafkaConversationTests.Route(cluster, "shared-kafka"));
        using var producer = KafkaConversationTests.Producer(admin, "shared-kafka", "panel-producer");
        using var failing = KafkaConversationTests.Producer(admin, "shared-kafka", "panel-producer", c => c.AllowAutoCreateTopics = false);

        using var playwright = await Playwright.CreateAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = chromium,
            Headless = true,
            Args = ChromiumArgs,
            Timeout = 30_000,
        });

        foreach (int width in new[] { 1400, 900 })
        {
            var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = width, Height = 900 } });
            var page = await context.NewPageAsync();
            page.SetDefaultTimeout(Timeout);
            var consoleErrors = new ConcurrentBag<string>();
            page.Console += (_, message) =>
            {
                if (message.Type == "error")
                {
                    consoleErrors.Add(message.Text);
                }
            };
            await page.GotoAsync(admin.BaseAddress.ToString());

            // The open page watches the clients it shows: requests made now are decoded.
            await page.Locator("#kafka .kafka-client[data-client='panel-producer']").WaitForAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            for (int i = 0; i < 3; i++)
            {
                await producer.ProduceAsync(new Confluent.Kafka.TopicPartition("panel-orders", i % 2), new Confluent.Kafka.Message<string, string> { Key = "k", Value = $"v{i}" }, timeout.Token);
            }

            _ = failing.ProduceAsync($"panel-missing-{width}", new Confluent.Kafka.Message<string, string> { Key = "k", Value = "v" }, timeout.Token);

            var client = page.Locator("#kafka .kafka-client[data-client='panel-producer']");
            await Assertions.Expect(client.Locator(".kafka-apis tr[data-api='Produce']")).ToBeVisibleAsync();
            var produceRow = await client.Locator(".kafka-apis tr[data-api='Produce']").InnerTextAsync();
            Assert.Matches(@"Produce\s+\d+\s+0\s+[\d.]+ ms\s+[\d.]+ ms", produceRow);
            await Assertions.Expect(client.Locator(".kafka-last tbody")).ToContainTextAsync("panel-orders[");
            await Assertions.Expect(client.Locator(".kafka-last tr.error").First).ToContainTextAsync("UNKNOWN_TOPIC_OR_PARTITION");
            await Assertions.Expect(client.Locator(".kafka-apis tr[data-api='Metadata'] td.error")).ToBeVisibleAsync();
            await Assertions.Expect(page.Locator("#kafka-memory")).ToContainTextAsync("at most 32 MiB");

            var screenshot = Path.Combine(AppContext.BaseDirectory, "TestResults", $"status-page-kafka-{width}.png");
            Directory.CreateDirectory(Path.GetDirectoryName(screenshot)!);
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = screenshot, FullPage = true });
            TestContext.Current.AddAttachment($"status-page-kafka-{width}.png", await File.ReadAllBytesAsync(screenshot), "image/png");
            var overflowing = await page.EvaluateAsync<string[]>(OverflowingPanels);
            Assert.True(overflowing.Length == 0, $"at {width} px these scroll sideways: {string.Join("; ", overflowing)}");
            var broken = await page.EvaluateAsync<string[]>(RouteNamesBrokenInsideAWord);
            Assert.True(broken.Length == 0, $"at {width} px these route names break inside a word: {string.Join("; ", broken)}");
            Assert.Empty(consoleErrors);
            await context.CloseAsync();
        }
    }

    /// <summary>
    /// Each client and each connection has a capture link: <c>/api/capture</c> with its selector and
    /// the seconds set in the header (10 until changed), at a wide and a narrow window. The link
    /// answers pcapng, and clicking it downloads what the connection carries from the click on.
    /// </summary>
    [Fact]
    public async Task Clients_and_connections_have_capture_links_that_download_pcapng_at_1400_and_900_pixels()
    {
        var chromium = ExternalTool.Require("chromium");
        await using var upstream = TestServer.Echo();
        await using var admin = await AdminProxy.StartAsync(AdminProxy.Route("orders", upstream, source: "127.0.0.2"));
        var listener = admin.Proxy.Endpoint("orders");
        using var client = await SocketExtensions.ConnectAsync(listener);
        await client.SendAsync(new byte[100]);
        await client.ReadExactlyAsync(100);
        var live = await Poll.UntilAsync(() => admin.Proxy.Connections.Snapshot(), c => c.Count == 1, "the connection registered");
        long id = live.Single().Id;

        using var playwright = await Playwright.CreateAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = chromium,
            Headless = true,
            Args = ChromiumArgs,
            Timeout = 30_000,
        });

        foreach (int width in new[] { 1400, 900 })
        {
            var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = width, Height = 900 }, AcceptDownloads = true });
            var page = await context.NewPageAsync();
            page.SetDefaultTimeout(Timeout);
            var consoleErrors = new ConcurrentBag<string>();
            page.Console += (_, message) =>
            {
                if (message.Type == "error")
                {
                    consoleErrors.Add(message.Text);
                }
            };
            await page.GotoAsync(admin.BaseAddress.ToString());

            // A client known by its address is picked by the source address it leaves from; a connection by its id.
            var clientLink = page.Locator("#assignments tbody tr[data-source='127.0.0.2'] a.capture");
            var connectionLink = page.Locator($"#connections tbody tr[data-key='{id}'] a.capture");
            await Assertions.Expect(clientLink).ToHaveAttributeAsync("href", "/api/capture?source=127.0.0.2&seconds=10");
            await Assertions.Expect(connectionLink).ToHaveAttributeAsync("href", $"/api/capture?connection={id}&seconds=10");
            await Assertions.Expect(connectionLink).ToHaveTextAsync("capture 10 s");
            await Assertions.Expect(connectionLink).ToBeVisibleAsync();
            await Assertions.Expect(clientLink).ToBeVisibleAsync();

            var screenshot = Path.Combine(AppContext.BaseDirectory, "TestResults", $"status-page-capture-{width}.png");
            Directory.CreateDirectory(Path.GetDirectoryName(screenshot)!);
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = screenshot, FullPage = true });
            TestContext.Current.AddAttachment($"status-page-capture-{width}.png", await File.ReadAllBytesAsync(screenshot), "image/png");
            var overflowing = await page.EvaluateAsync<string[]>(OverflowingPanels);
            Assert.True(overflowing.Length == 0, $"at {width} px these scroll sideways: {string.Join("; ", overflowing)}");

            // A new number of seconds changes every link at once, and survives the next refresh.
            await page.FillAsync("#capture-seconds", "2");
            await Assertions.Expect(clientLink).ToHaveAttributeAsync("href", "/api/capture?source=127.0.0.2&seconds=2");
            await Assertions.Expect(connectionLink).ToHaveAttributeAsync("href", $"/api/capture?connection={id}&seconds=2");
            await Assertions.Expect(connectionLink).ToHaveTextAsync("capture 2 s");
            await Assertions.Expect(page.Locator("#updated")).Not.ToHaveTextAsync(await page.Locator("#updated").InnerTextAsync(), new LocatorAssertionsToHaveTextOptions { Timeout = Timeout });
            await Assertions.Expect(clientLink).ToHaveAttributeAsync("href", "/api/capture?source=127.0.0.2&seconds=2");

            // The client's link, fetched by the page: pcapng from its section header block on.
            var fetched = await page.EvaluateAsync<JsonElement>(FetchCapture, await clientLink.GetAttributeAsync("href"));
            Assert.Equal(200, fetched.GetProperty("status").GetInt32());
            Assert.Equal("application/x-pcapng", fetched.GetProperty("type").GetString());
            Assert.Equal([0x0A, 0x0D, 0x0D, 0x0A], fetched.GetProperty("head").EnumerateArray().Select(b => b.GetInt32()));

            // The connection's link, clicked: a file with what the connection carried after the click.
            var marker = Encoding.ASCII.GetBytes($"sent after the click at {width} px");
            var download = await page.RunAndWaitForDownloadAsync(() => connectionLink.ClickAsync());
            await client.SendAsync(marker);
            await client.ReadExactlyAsync(marker.Length);
            var file = await download.PathAsync();
            var bytes = await File.ReadAllBytesAsync(file);
            Assert.EndsWith(".pcapng", download.SuggestedFilename, StringComparison.Ordinal);
            Assert.Equal([0x0A, 0x0D, 0x0D, 0x0A], bytes.Take(4));
            var packets = Packet.ReadAll(bytes);
            Assert.Equal(marker.Length, packets.Where(p => p.To.Equals(listener)).Sum(p => p.PayloadLength));
            Assert.Equal(marker.Length, packets.Where(p => p.From.Equals(listener)).Sum(p => p.PayloadLength));
            Assert.Empty(consoleErrors);
            await context.CloseAsync();
        }
    }

    /// <summary>Fetches a link as the page would: its status, content type and first four bytes.</summary>
    private const string FetchCapture = """
        async (href) => {
          const response = await fetch(href, { cache: "no-store" });
          const bytes = new Uint8Array(await response.arrayBuffer());
          return { status: response.status, type: response.headers.get("content-type"), head: [...bytes.slice(0, 4)] };
        }
        """;

    /// <summary>
    /// A route's TLS line under its path, at a wide and a narrow window: a route with TLS on both
    /// sides shows both with what its latest connection negotiated, a route with <c>Insecure</c>
    /// says INSECURE (in its warning style, the word whole on one line), a plaintext route shows no
    /// TLS line, and no line reaches out of its cell or makes a panel scroll sideways.
    /// </summary>
    [Fact]
    public async Task A_routes_TLS_line_and_INSECURE_show_at_1400_and_900_pixels_without_overflow()
    {
        var chromium = ExternalTool.Require("chromium");
        using var certs = new TestCertificates();
        await using var echo = TestServer.Echo();
        await using var verified = await TlsTerminator.StartAsync(certs.Combined("server"), echo.Endpoint);
        await using var unverified = await TlsTerminator.StartAsync(certs.Combined("untrusted"), echo.Endpoint);
        await using var admin = await AdminProxy.StartAsync(
            AdminProxy.Route("orders-tls", echo) with
            {
                Upstream = $"localhost:{verified.Port}",
                Tls = new Dictionary<string, string?> { ["CaFile"] = certs.CaFile },
                ListenTls = new Dictionary<string, string?> { ["CertificateFile"] = certs.Combined("server") },
            },
            AdminProxy.Route("legacy-insecure", echo, source: "127.0.0.3") with
            {
                Upstream = $"localhost:{unverified.Port}",
                Tls = new Dictionary<string, string?> { ["Insecure"] = "true" },
            },
            AdminProxy.Route("plain", echo, source: "127.0.0.4"));

        // One exchange on each TLS route, so the lines carry the negotiated sessions (their longest form).
        using (var socket = await SocketExtensions.ConnectAsync(admin.Proxy.Endpoint("orders-tls")))
        await using (var tls = new System.Net.Security.SslStream(new NetworkStream(socket), leaveInnerStreamOpen: false))
        {
            await tls.AuthenticateAsClientAsync(new System.Net.Security.SslClientAuthenticationOptions
            {
                TargetHost = "localhost",
                CertificateChainPolicy = Forwarding.TlsForwardingTests.Policy(certs.CaFile),
            }, TestContext.Current.CancellationToken);
            await tls.WriteAsync("seen"u8.ToArray(), TestContext.Current.CancellationToken);
            await tls.ReadExactlyAsync(new byte[4], TestContext.Current.CancellationToken);
        }

        using (var socket = await SocketExtensions.ConnectAsync(admin.Proxy.Endpoint("legacy-insecure")))
        {
            await socket.SendAsync("seen"u8.ToArray());
            await socket.ReadExactlyAsync(4);
        }

        await admin.WaitForJsonAsync("api/routes", routes => routes.EnumerateArray().Count(r =>
            r.TryGetProperty("tls", out var tls) && tls.ValueKind == System.Text.Json.JsonValueKind.Object
            && tls.TryGetProperty("upstreamPeer", out var peer) && peer.ValueKind == System.Text.Json.JsonValueKind.Object) == 2);

        using var playwright = await Playwright.CreateAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = chromium,
            Headless = true,
            Args = ChromiumArgs,
            Timeout = 30_000,
        });

        foreach (int width in new[] { 1400, 900 })
        {
            var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = width, Height = 900 } });
            var page = await context.NewPageAsync();
            page.SetDefaultTimeout(Timeout);
            var consoleErrors = new ConcurrentBag<string>();
            page.Console += (_, message) =>
            {
                if (message.Type == "error")
                {
                    consoleErrors.Add(message.Text);
                }
            };
            await page.GotoAsync(admin.BaseAddress.ToString());

            var both = page.Locator("#routes tbody tr[data-route='orders-tls'] .tls-line");
            await Assertions.Expect(both).ToBeVisibleAsync();
            await Assertions.Expect(both).ToContainTextAsync("TLS from clients (TLS 1.");
            await Assertions.Expect(both).ToContainTextAsync("TLS to upstream (TLS 1.");
            await Assertions.Expect(both).ToContainTextAsync("CN=localhost, expires ");
            await Assertions.Expect(both).Not.ToContainTextAsync("INSECURE");
            await Assertions.Expect(both.Locator(".tls.insecure")).ToHaveCountAsync(0);

            var insecure = page.Locator("#routes tbody tr[data-route='legacy-insecure'] .tls-line .tls.insecure");
            await Assertions.Expect(insecure).ToBeVisibleAsync();
            await Assertions.Expect(insecure).ToContainTextAsync("TLS to upstream (INSECURE: not verified) (TLS 1.");
            await Assertions.Expect(insecure).ToHaveCSSAsync("font-weight", "600");
            await Assertions.Expect(page.Locator("#routes tbody tr[data-route='plain'] .tls-line")).ToHaveCountAsync(0);
            await Assertions.Expect(page.Locator("#routes tbody tr[data-route='plain']")).ToBeVisibleAsync();

            var screenshot = Path.Combine(AppContext.BaseDirectory, "TestResults", $"status-page-tls-{width}.png");
            Directory.CreateDirectory(Path.GetDirectoryName(screenshot)!);
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = screenshot, FullPage = true });
            TestContext.Current.TestOutputHelper?.WriteLine($"status page with TLS at {width} px: {screenshot}");
            TestContext.Current.AddAttachment($"status-page-tls-{width}.png", await File.ReadAllBytesAsync(screenshot), "image/png");

            var outside = await page.EvaluateAsync<string[]>(TlsLinesOutsideTheirCells);
            Assert.True(outside.Length == 0, $"at {width} px these TLS lines reach out of their cells: {string.Join("; ", outside)}");
            Assert.Equal(2, await page.Locator("#routes tbody .tls-line").CountAsync());
            var split = await page.EvaluateAsync<string[]>(InsecureWordSplit);
            Assert.True(split.Length == 0, $"at {width} px the word INSECURE is split across lines: {string.Join("; ", split)}");
            var overflowing = await page.EvaluateAsync<string[]>(OverflowingPanels);
            Assert.True(overflowing.Length == 0, $"at {width} px these scroll sideways: {string.Join("; ", overflowing)}");
            Assert.Empty(consoleErrors);
            await context.CloseAsync();
        }
    }

    /// <summary>Each TLS line and each of its pieces: a box wider than the cell it sits in, or out of it.</summary>
    private const string TlsLinesOutsideTheirCells = """
        () => {
          const outside = [];
          for (const line of document.querySelectorAll("#routes .tls-line")) {
            const cell = line.closest("td").getBoundingClientRect();
            for (const el of [line, ...line.querySelectorAll(".tls")]) {
              for (const r of el.getClientRects()) {
                if (r.width > 0 && (r.left < cell.left - 0.5 || r.right > cell.right + 0.5)) {
                  outside.push(`'${el.textContent}' at ${Math.round(r.left)}..${Math.round(r.right)}, cell ${Math.round(cell.left)}..${Math.round(cell.right)}`);
                }
              }
            }
          }
          return outside;
        }
        """;

    /// <summary>The word INSECURE in a TLS line, when its letters sit on more than one line.</summary>
    private const string InsecureWordSplit = """
        () => {
          const split = [];
          for (const el of document.querySelectorAll("#routes .tls.insecure")) {
            const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
              const at = node.data.indexOf("INSECURE");
              if (at < 0) continue;
              const range = document.createRange();
              range.setStart(node, at);
              range.setEnd(node, at + "INSECURE".length);
              const lines = new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top)));
              if (lines.size > 1) split.push(el.textContent);
            }
          }
          return split;
        }
        """;

    /// <summary>
    /// Every route name in the route and connection tables: each part up to a slash
    /// (<c>shared-kafka/</c>, <c>broker-1</c>) must sit on one line.
    /// </summary>
    private const string RouteNamesBrokenInsideAWord = """
        () => {
          const broken = [];
          for (const cell of document.querySelectorAll("#routes tbody td:first-child, #connections tbody td:first-child, #kafka .route-name")) {
            const chars = [];
            const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
              for (let i = 0; i < node.data.length; i++) chars.push([node, i]);
            }
            const text = chars.map(([node, i]) => node.data[i]).join("");
            for (const m of text.matchAll(/[^\/]+\/?/g)) {
              const [startNode, start] = chars[m.index];
              const [endNode, end] = chars[m.index + m[0].length - 1];
              const range = document.createRange();
              range.setStart(startNode, start);
              range.setEnd(endNode, end + 1);
              const lines = new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top)));
              if (lines.size > 1) broken.push(`'${m[0]}' in '${text}'`);
            }
          }
          return broken;
        }
        """;

    /// <summary>The page and each panel: wider content than room (a cut-off or sideways-scrolling column).</summary>
    private const string OverflowingPanels = """
        () => [document.documentElement, ...document.querySelectorAll("main section")]
          .filter((el) => el.scrollWidth > el.clientWidth)
          .map((el) => `${el.id || el.querySelector("h2")?.textContent || el.tagName}: ${el.scrollWidth} > ${el.clientWidth}`)
        """;

    /// <summary>
    /// Every token of every filter and command (up to a space; a set member with its comma) must
    /// sit on one line: a line break may fall between tokens, never inside one.
    /// </summary>
    private const string TokensBrokenAcrossLines = """
        () => {
          const broken = [];
          for (const code of document.querySelectorAll(".filter code")) {
            const walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
              for (const m of node.data.matchAll(/[^\s,]+,?/g)) {
                const range = document.createRange();
                range.setStart(node, m.index);
                range.setEnd(node, m.index + m[0].length);
                const lines = new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top)));
                if (lines.size > 1) broken.push(`'${m[0]}' in '${code.textContent}'`);
              }
            }
          }
          return broken;
        }
        """;
}

[CollectionDefinition(nameof(RunsAlone), DisableParallelization = true)]
public sealed class RunsAlone;
