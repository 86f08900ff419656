using System.Diagnostics;
using System.Net.Sockets;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Faults;

/// <summary>Peers that misbehave: each fault ends its own connection, and a bystander is still served.</summary>
public sealed class FaultInjectionTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(15);

    private static async Task AssertBystanderServedAsync(TestProxy proxy, byte marker)
    {
        using var bystander = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        await bystander.SendAsync(new[] { marker });
        Assert.Equal(marker, (await bystander.ReadExactlyAsync(1, Prompt))[0]);
    }

    [Fact]
    public async Task An_upstream_reset_in_the_middle_of_a_transfer_resets_that_client_only()
    {
        // Upstream: echo by default; a client that starts with 'R' gets 8 MiB and then a reset.
        await using var upstream = TestServer.Start(async (socket, ct) =>
        {
            var first = await socket.ReadExactlyAsync(1);
            if (first[0] != (byte)'R')
            {
                await socket.SendAsync(first, SocketFlags.None, ct);
                await socket.ReadToEndAsync(Prompt);
                return;
            }

            var chunk = new byte[64 * 1024];
            for (int i = 0; i < 128; i++)
            {
                await socket.SendAsync(chunk, SocketFlags.None, ct);
            }

            socket.Reset();
        });
        await using var proxy = await TestProxy.StartAsync(upstream.Address);

        using var victim = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        await victim.SendAsync("R"u8.ToArray());
        long received = 0;
        var buffer = new byte[64 * 1024];
        var error = SocketError.Success;
        try
        {
            using var cts = new CancellationTokenSource(Prompt);
            while (true)
            {
                int n = await victim.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                if (n == 0)
                {
                    break;
                }

                received += n;
            }
        }
        catch (SocketException e)
        {
            error = e.SocketErrorCode;
        }

        // The reset came in the middle of the transfer: part of it had arrived, and no more than was sent.
        Assert.Equal(SocketError.ConnectionReset, error);
        Assert.InRange(received, 1, 8L * 1024 * 1024);
        await proxy.Logs.WaitForAsync(Prompt, "closed: reset by upstream");
        await AssertBystanderServedAsync(proxy, 7);
    }

    [Fact]
    public async Task An_upstream_that_accepts_and_never_reads_holds_a_bounded_amount_and_others_go_on()
    {
        var quiet = new TaskCompletionSource();
        await using var upstream = TestServer.Start(async (socket, ct) =>
        {
            var first = await socket.ReadExactlyAsync(1);
            if (first[0] == (byte)'Q')
            {
                await quiet.Task.WaitAsync(TimeSpan.FromSeconds(60), ct); // accepts, never reads again, never answers
                return;
            }

            await socket.SendAsync(first, SocketFlags.None, ct);
            await socket.ReadToEndAsync(Prompt);
        });
        await using var proxy = await TestProxy.StartAsync(upstream.Address);

        using var client = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        await client.SendAsync("Q"u8.ToArray());
        var chunk = new byte[64 * 1024];
        long sent = 0;
        using (var stall = new CancellationTokenSource(TimeSpan.FromSeconds(3)))
        {
            try
            {
                while (sent < 256L * 1024 * 1024)
                {
                    sent += await client.SendAsync(chunk, SocketFlags.None, stall.Token);
                }
            }
            catch (OperationCanceledException)
            {
                // The client's send stalled: backpressure reached it.
            }
        }

        Assert.InRange(sent, 1, 128L * 1024 * 1024);
        var connection = proxy.Connections.Snapshot().Single(c => c.BytesToUpstream > 0);
        Assert.InRange(connection.BufferedBytes, 0, 2L * 1024 * 1024);
        await AssertBystanderServedAsync(proxy, 8);

        client.Reset();
        await proxy.Logs.WaitForAsync(Prompt, "closed: reset by client");
        quiet.SetResult();
    }

    [Fact]
    public async Task A_client_process_that_is_killed_mid_transfer_closes_its_upstream()
    {
        var bash = ExternalTool.Require("bash");
        var upstreamSaw = new TaskCompletionSource<SocketError>();
        await using var upstream = TestServer.Start(async (socket, ct) => upstreamSaw.TrySetResult(await socket.WaitForCloseAsync(Prompt)));
        await using var proxy = await TestProxy.StartAsync(upstream.Address);
        var endpoint = proxy.Endpoint();

        // A separate process streams into the proxy until it is killed.
        using var child = Process.Start(new ProcessStartInfo(bash, ["-c", $"exec 3<>/dev/tcp/{endpoint.Address}/{endpoint.Port}; while true; do printf 'data-data-data-' >&3; done"]))!;
        await proxy.Logs.WaitForAsync(Prompt, "open");
        await Poll.UntilAsync(() => proxy.Connections.Snapshot().Any(c => c.BytesToUpstream > 0), "the child's data to reach the upstream", Prompt);
        child.Kill();
        await child.WaitForExitAsync().WaitAsync(Prompt);

        // The dead process's kernel closed its socket with a FIN (it had nothing unread), which the proxy passes on.
        var seen = await upstreamSaw.Task.WaitAsync(Prompt);
        Assert.Equal(SocketError.Success, seen);
        await proxy.Logs.WaitForAsync(Prompt, "closed:");
        await Poll.UntilAsync(() => proxy.Connections.Count == 0, "no connection left in the registry");
    }
}
