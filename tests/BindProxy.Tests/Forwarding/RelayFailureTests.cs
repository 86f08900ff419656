using System.Net.Sockets;
using BindProxy.Configuration;
using BindProxy.Forwarding;
using BindProxy.Tests.Admin;
using BindProxy.Tests.Infrastructure;
using BindProxy.Tests.Transport;
using BindProxy.Transport;
using BindProxy.Transport.Linux;
using Microsoft.Extensions.DependencyInjection;

namespace BindProxy.Tests.Forwarding;

/// <summary>The relay engine when its own parts fail: a loop that cannot go on, a handoff that throws.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class RelayFailureTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task A_failed_loop_closes_its_connections_as_internal_errors_and_leaves_rotation_and_the_last_one_ends_the_process()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        const string Route = "loop-failure";
        await using var upstream = TestServer.Echo();
        await using var admin = await AdminProxy.StartAsync(AdminProxy.Route(Route, upstream));
        var proxy = admin.Proxy;
        var engine = proxy.Services.GetRequiredService<RelayEngine>();
        var exited = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        engine.ExitProcess = code => exited.TrySetResult(code);
        var loops = engine.Loops;

        // Enough connections that every loop holds some (round-robin).
        var clients = new List<Socket>();
        for (int i = 0; i < 4 * loops.Count; i++)
        {
            var client = await SocketExtensions.ConnectAsync(proxy.Endpoint(Route));
            await client.SendAsync(new[] { (byte)i });
            Assert.Equal((byte)i, (await client.ReadExactlyAsync(1, Prompt))[0]);
            clients.Add(client);
        }

        EpollLoopTests.BreakEpoll(loops[0]);
        await proxy.Logs.WaitForAsync(Prompt, loops[0].Name, "cannot wait for events any more", $"{loops.Count - 1} of {loops.Count} relay loop(s) left");

        // The failed loop's connections were reset, each logged and counted once; the others go on.
        var reset = new List<Socket>();
        foreach (var client in clients)
        {
            try
            {
                await client.SendAsync(new byte[] { 7 });
                var echoed = await client.ReadExactlyAsync(1, Prompt);
                Assert.Equal(7, echoed[0]);
            }
            catch (Exception e) when (e is SocketException or EndOfStreamException)
            {
                reset.Add(client);
            }
        }

        Assert.InRange(reset.Count, 1, clients.Count - 1);
        int open = clients.Count - reset.Count;
        await Poll.UntilAsync(() => proxy.CountOf(Route) == open && proxy.Connections.Count == open,
            () => $"{open} connection(s) left, in the route's count and the registry; they are {proxy.CountOf(Route)} and {proxy.Connections.Count}");
        Assert.Equal(reset.Count, proxy.Logs.Messages.Count(m => m.Contains("closed: internal error", StringComparison.Ordinal)));
        await MetricsTests.WaitForMetricAsync(admin, "bindproxy_connections_closed_total", reset.Count, ("route", Route), ("reason", "internal_error"));

        // New connections go to the loops still running, however many arrive in a row.
        for (int i = 0; i < 4 * loops.Count; i++)
        {
            using var client = await SocketExtensions.ConnectAsync(proxy.Endpoint(Route));
            await client.SendAsync(new[] { (byte)i });
            Assert.Equal((byte)i, (await client.ReadExactlyAsync(1, Prompt))[0]);
        }

        Assert.False(exited.Task.IsCompleted);

        // With no loop left the proxy says so at critical and exits non-zero.
        foreach (var loop in loops.Skip(1))
        {
            EpollLoopTests.BreakEpoll(loop);
        }

        Assert.Equal(RelayEngine.ExitNoRelayLoop, await exited.Task.WaitAsync(Prompt));
        var last = proxy.Logs.Entries.Single(e => e.Message.Contains("No relay loop is left", StringComparison.Ordinal));
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Critical, last.Level);
        clients.ForEach(c => c.Dispose());
    }

    [Theory]
    [InlineData(nameof(HandoffStep.Connected))]
    [InlineData(nameof(HandoffStep.Registered))]
    public async Task A_handoff_that_throws_resets_both_sides_and_gives_back_every_count(string stepName)
    {
        var step = Enum.Parse<HandoffStep>(stepName);
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        var upstreamSaw = new TaskCompletionSource<SocketError>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = TestServer.Start(async (socket, ct) =>
        {
            if (socket.RemoteEndPoint!.ToString()!.StartsWith("127.0.0.2:", StringComparison.Ordinal) && !upstreamSaw.Task.IsCompleted)
            {
                upstreamSaw.TrySetResult(await socket.WaitForCloseAsync(Prompt));
                return;
            }

            var buffer = new byte[1];
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, ct) > 0)
            {
                await socket.SendAsync(buffer, SocketFlags.None, ct);
            }
        });
        var faults = new HandoffFaults { Inject = at => { if (at == step) { throw new InvalidOperationException($"injected at {at}"); } } };
        await using var proxy = await TestProxy.StartAsync(
            services => services.AddSingleton(faults),
            new BindProxy.Configuration.RouteConfig { Name = "test", Listen = "127.0.0.1:0", Upstream = upstream.Address, Source = "127.0.0.2", Assign = "client-address" });
        var budget = proxy.Services.GetRequiredService<DescriptorBudget>();
        long listenerOnly = budget.InUse;

        Assert.Equal(SocketError.ConnectionReset, await SocketExtensions.ConnectAndWaitForCloseAsync(proxy.Endpoint(), Prompt));

        var upstreamClosed = await upstreamSaw.Task.WaitAsync(Prompt);
        Assert.Equal(SocketError.ConnectionReset, upstreamClosed);
        await Poll.UntilAsync(() => budget.InUse == listenerOnly && proxy.CountOf("test") == 0 && proxy.Connections.Count == 0,
            () => $"every count given back: descriptors {budget.InUse} (the listener's: {listenerOnly}), route {proxy.CountOf("test")}, registry {proxy.Connections.Count}");
        Assert.All(proxy.Services.GetRequiredService<BindProxy.Forwarding.AssignmentRegistry>().Snapshot(), a => Assert.Equal(0, a.ActiveConnections));

        // The next client is served as usual.
        faults.Inject = null;
        using var next = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        await next.SendAsync(new byte[] { 2 });
        Assert.Equal(2, (await next.ReadExactlyAsync(1, Prompt))[0]);
    }
}
