using System.Net;
using System.Net.Sockets;
using BindProxy.Configuration;
using BindProxy.Tests.Infrastructure;
using Microsoft.Extensions.Logging;

namespace BindProxy.Tests.Forwarding;

/// <summary>What a user reads when the upstream is not running yet: advice once, not once per client.</summary>
public sealed class UpstreamRefusalTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(5);

    [Theory]
    [InlineData("Tcp", "start the server at 127.0.0.1:")]
    [InlineData("Kafka", "start a Kafka broker at 127.0.0.1:")]
    public async Task A_refusing_upstream_is_explained_once_per_streak_and_again_after_it_came_back(string protocol, string advice)
    {
        using var reserved = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        reserved.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var upstream = (IPEndPoint)reserved.LocalEndPoint!; // bound, not listening: connects are refused
        await using var proxy = await TestProxy.StartAsync(new RouteConfig
        {
            Name = "test", Listen = "127.0.0.1:0", Upstream = upstream.ToString(), Source = "127.0.0.2", Protocol = protocol,
        });

        for (int i = 0; i < 3; i++)
        {
            await SocketExtensions.ConnectAndWaitForCloseAsync(proxy.Endpoint(), Prompt);
        }

        await Poll.UntilAsync(() => Refusals(proxy).Count == 3, "three refusals logged");
        var refusals = Refusals(proxy);
        var warning = Assert.Single(refusals, e => e.Level == LogLevel.Warning);
        Assert.Contains(advice, warning.Message, StringComparison.Ordinal);
        Assert.Contains($"connect refused: {upstream}", warning.Message, StringComparison.Ordinal);
        Assert.All(refusals.Where(e => e.Level != LogLevel.Warning), e => Assert.Equal(LogLevel.Debug, e.Level));

        // The server comes up: the streak ends with one line, and the next outage is explained again.
        reserved.Listen(16);
        using (var client = await SocketExtensions.ConnectAsync(proxy.Endpoint()))
        {
            using var accepted = await reserved.AcceptAsync().WaitAsync(Prompt);
            await proxy.Logs.WaitForAsync(Prompt, $"{upstream} accepts connections again");
        }

        reserved.Close();
        await SocketExtensions.ConnectAndWaitForCloseAsync(proxy.Endpoint(), Prompt);
        await Poll.UntilAsync(
            () => Refusals(proxy).Count(e => e.Level == LogLevel.Warning) == 2,
            () => $"the advice logged again for the new outage; the proxy logged:\n{string.Join("\n", proxy.Logs.Entries.Select(e => $"{e.Level} {e.EventId} {e.Message}"))}");
    }

    private static List<(LogLevel Level, int EventId, string Message)> Refusals(TestProxy proxy) =>
        [.. proxy.Logs.Entries.Where(e => e.Message.Contains("connect refused", StringComparison.Ordinal))];
}
