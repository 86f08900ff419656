using System.Collections.Concurrent;
using System.Net.Sockets;
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
}

[CollectionDefinition(nameof(RunsAlone), DisableParallelization = true)]
public sealed class RunsAlone;
