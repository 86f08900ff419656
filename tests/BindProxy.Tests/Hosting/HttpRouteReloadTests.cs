using System.Net;
using System.Net.Sockets;
using System.Text;
using BindProxy.Tests.Http;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Hosting;

/// <summary>
/// Http routes listen on listeners of the proxy's own, so a reload adds, moves and removes them
/// like any other route's, and a removed one's client connections are drained.
/// </summary>
public sealed class HttpRouteReloadTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);

    private static int FreePort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    private static string Config(HttpTestServer server, params (string Name, int Port, string Protocol)[] routes) =>
        "{ \"BindProxy\": { \"DrainTimeout\": \"00:00:05\", \"Routes\": { " +
        string.Join(", ", routes.Select(r =>
            $"\"{r.Name}\": {{ \"Listen\": \"127.0.0.1:{r.Port}\", \"Upstream\": \"{server.Address}\", \"Source\": \"127.0.0.2\", \"Protocol\": \"{r.Protocol}\" }}")) +
        " } } }";

    /// <summary>One HTTP/1.1 request on <paramref name="socket"/>, kept alive; returns the status line once the whole response is in.</summary>
    private static async Task<string> GetAsync(Socket socket)
    {
        await socket.SendAsync(Encoding.ASCII.GetBytes("GET /whoami HTTP/1.1\r\nHost: reload.test\r\n\r\n"));
        var headers = new List<string>();
        for (var line = await LineAsync(socket); line.Length > 0; line = await LineAsync(socket))
        {
            headers.Add(line);
        }

        if (headers.FirstOrDefault(h => h.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase)) is { } length)
        {
            await socket.ReadExactlyAsync(int.Parse(length["Content-Length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture), Prompt);
        }
        else
        {
            // Chunked: size line, data and CRLF, until the empty last chunk and its blank line.
            for (int size; (size = Convert.ToInt32(await LineAsync(socket), 16)) > 0;)
            {
                await socket.ReadExactlyAsync(size + 2, Prompt);
            }

            await LineAsync(socket);
        }

        return headers[0];
    }

    private static async Task<string> LineAsync(Socket socket)
    {
        var line = new StringBuilder();
        while (!line.ToString().EndsWith("\r\n", StringComparison.Ordinal))
        {
            line.Append((char)(await socket.ReadExactlyAsync(1, Prompt))[0]);
        }

        return line.ToString()[..^2];
    }

    [Fact]
    public async Task An_Http_route_is_added_moved_and_removed_by_reload_and_its_clients_are_drained()
    {
        await using var server = await HttpTestServer.StartAsync();
        int first = FreePort(), second = FreePort(), other = FreePort();
        using var temp = new TempDirectory();
        var file = Path.Combine(temp.Path, "appsettings.json");
        await File.WriteAllTextAsync(file, Config(server, ("web", first, "Http")), TestContext.Current.CancellationToken);
        await using var proxy = await TestProxy.StartFromFileAsync(file);

        using var kept = await SocketExtensions.ConnectAsync(new IPEndPoint(IPAddress.Loopback, first));
        Assert.Equal("HTTP/1.1 200 OK", await GetAsync(kept));

        // Moved: the new endpoint serves at once, the old one no longer accepts; its open connection goes on.
        await File.WriteAllTextAsync(file, Config(server, ("web", second, "Http"), ("api", other, "Tcp")), TestContext.Current.CancellationToken);
        await proxy.Logs.WaitForAsync(Prompt, $"Reload: route web changed: Listen 127.0.0.1:{first} → 127.0.0.1:{second}");
        await proxy.Logs.WaitForAsync(Prompt, "Reload: route api added");
        using (var moved = await SocketExtensions.ConnectAsync(new IPEndPoint(IPAddress.Loopback, second)))
        {
            Assert.Equal("HTTP/1.1 200 OK", await GetAsync(moved));
        }

        var refused = await Assert.ThrowsAsync<SocketException>(() => SocketExtensions.ConnectAsync(new IPEndPoint(IPAddress.Loopback, first)));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        Assert.Equal("HTTP/1.1 200 OK", await GetAsync(kept));

        // Changed into an Http route: its Tcp listener makes way for an HTTP one, without a restart.
        await File.WriteAllTextAsync(file, Config(server, ("web", second, "Http"), ("api", other, "Http")), TestContext.Current.CancellationToken);
        await proxy.Logs.WaitForAsync(Prompt, "Reload: route api changed: Protocol Tcp → Http");

        // The change is logged as the Tcp listener closes; the HTTP one takes the port a moment later.
        async Task<Socket?> TryConnectAsync()
        {
            try
            {
                return await SocketExtensions.ConnectAsync(new IPEndPoint(IPAddress.Loopback, other));
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
            {
                return null;
            }
        }

        using (var api = await Poll.UntilAsync<Socket?>(TryConnectAsync, s => s is not null, "the HTTP listener of api on its port", Prompt))
        {
            Assert.Equal("HTTP/1.1 200 OK", await GetAsync(api!));
        }

        Assert.DoesNotContain(proxy.Logs.Messages, m => m.Contains("next restart", StringComparison.Ordinal));

        // Removed: an idle keep-alive connection of the route is closed at once (not left to the drain's end).
        using var idle = await SocketExtensions.ConnectAsync(new IPEndPoint(IPAddress.Loopback, second));
        Assert.Equal("HTTP/1.1 200 OK", await GetAsync(idle));
        Assert.Contains(proxy.Connections.Snapshot(), c => c.Route == "web"); // its pooled upstream connection, which must go below
        await File.WriteAllTextAsync(file, Config(server, ("api", other, "Http")), TestContext.Current.CancellationToken);
        await proxy.Logs.WaitForAsync(Prompt, "Reload: route web removed");
        var removed = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal(SocketError.Success, await idle.WaitForCloseAsync(Prompt));
        Assert.True(removed.Elapsed < TimeSpan.FromSeconds(4), $"the idle connection closed {removed.Elapsed} after the removal; the drain is 5 s");

        // Its pooled upstream connections go once its clients are gone, not at the drain's end.
        await Poll.UntilAsync(() => !proxy.Connections.Snapshot().Any(c => c.Route == "web"), "no upstream connection of the removed route", TimeSpan.FromSeconds(4));
        refused = await Assert.ThrowsAsync<SocketException>(() => SocketExtensions.ConnectAsync(new IPEndPoint(IPAddress.Loopback, second)));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
    }
}
