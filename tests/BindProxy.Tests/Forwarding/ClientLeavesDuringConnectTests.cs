using System.Net;
using System.Net.Sockets;
using BindProxy.Configuration;
using BindProxy.Forwarding;
using BindProxy.Tests.Infrastructure;
using BindProxy.Transport;

namespace BindProxy.Tests.Forwarding;

/// <summary>
/// A client that leaves while the proxy is still connecting upstream: the connect is given up and
/// nothing reaches the upstream; a client that half-closes after sending a request still gets it
/// delivered.
/// </summary>
public sealed class ClientLeavesDuringConnectTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_client_that_leaves_before_the_upstream_answers_abandons_the_connect(bool reset)
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        await using var upstream = await SilentUpstream.StartAsync();
        await using var proxy = await TestProxy.StartAsync(upstream.Address, source: "127.0.0.2", connectTimeout: "00:00:20");

        var client = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        await upstream.WaitForConnectFromAsync(IPAddress.Parse("127.0.0.2"));
        Assert.Equal(1, proxy.CountOf("test"));
        if (reset)
        {
            client.Reset();
        }
        else
        {
            client.Shutdown(SocketShutdown.Send); // FIN, nothing sent before it
        }

        var line = await proxy.Logs.WaitForAsync(TimeSpan.FromSeconds(3), "closed:", "the client left before the connect");
        Assert.Contains(reset ? "reset by client" : "client FIN", line, StringComparison.Ordinal);
        if (!reset)
        {
            Assert.Equal(SocketError.ConnectionReset, await client.WaitForCloseAsync(Prompt));
        }

        client.Dispose();
        await Poll.UntilAsync(() => proxy.CountOf("test") == 0, "the route's count to be given back (just after the line)");

        // The upstream takes connections again: nothing from the proxy's source arrives (its SYN
        // would be sent again after 1 s and 3 s had the connect gone on).
        Assert.Null(await upstream.AcceptFromAsync(IPAddress.Parse("127.0.0.2"), TimeSpan.FromSeconds(4)));
    }

    [Fact]
    public async Task A_client_that_sends_a_request_and_half_closes_while_connecting_gets_its_answer()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        await using var upstream = await SilentUpstream.StartAsync();
        await using var proxy = await TestProxy.StartAsync(upstream.Address, source: "127.0.0.2", connectTimeout: "00:00:20");

        using var client = await SocketExtensions.ConnectAsync(proxy.Endpoint());
        await upstream.WaitForConnectFromAsync(IPAddress.Parse("127.0.0.2"));
        await client.SendAsync("hello"u8.ToArray());
        client.Shutdown(SocketShutdown.Send);

        // The proxy's SYN is answered once the upstream takes connections again (its retry after 1 or 3 s).
        using var accepted = await upstream.AcceptFromAsync(IPAddress.Parse("127.0.0.2"), TimeSpan.FromSeconds(10));
        Assert.NotNull(accepted);
        Assert.Equal("hello"u8.ToArray(), await accepted.ReadToEndAsync(Prompt));
        await accepted.SendAsync("world"u8.ToArray());
        accepted.Shutdown(SocketShutdown.Send);
        Assert.Equal("world"u8.ToArray(), await client.ReadToEndAsync(Prompt));
    }

    /// <summary>
    /// A listener whose accept queue is full (backlog 1, two connections nobody accepts), so the
    /// kernel drops the next SYN and the connect stays in progress, until the test accepts.
    /// </summary>
    private sealed class SilentUpstream : IAsyncDisposable
    {
        private readonly Socket _listener;
        private readonly List<Socket> _fillers;

        private SilentUpstream(Socket listener, List<Socket> fillers) => (_listener, _fillers) = (listener, fillers);

        public string Address => _listener.LocalEndPoint!.ToString()!;

        /// <summary>
        /// Waits until a connect from <paramref name="source"/> to this listener is in progress:
        /// the kernel's socket table holds it in SYN-SENT, its SYN dropped at the full queue.
        /// </summary>
        public Task WaitForConnectFromAsync(IPAddress source)
        {
            var listening = (IPEndPoint)_listener.LocalEndPoint!;
            return Poll.UntilAsync(
                () => SocketTable.Read().Any(e => e.State == SocketTable.SynSent && e.Local.Address.Equals(source) && e.Remote.Equals(listening)),
                $"a connect from {source} to {listening} in SYN-SENT");
        }

        public static async Task<SilentUpstream> StartAsync()
        {
            var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(1);
            var fillers = new List<Socket>();
            for (int i = 0; i < 2; i++)
            {
                var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await filler.ConnectAsync(listener.LocalEndPoint!).WaitAsync(Prompt);
                fillers.Add(filler);
            }

            return new SilentUpstream(listener, fillers);
        }

        /// <summary>Takes connections off the queue until one from <paramref name="source"/> arrives (null when none does in time).</summary>
        public async Task<Socket?> AcceptFromAsync(IPAddress source, TimeSpan timeout)
        {
            using var cts = new CancellationTokenSource(timeout);
            try
            {
                while (true)
                {
                    var accepted = await _listener.AcceptAsync(cts.Token);
                    if (((IPEndPoint)accepted.RemoteEndPoint!).Address.Equals(source))
                    {
                        return accepted;
                    }

                    _fillers.Add(accepted);
                }
            }
            catch (OperationCanceledException)
            {
                return null;
            }
        }

        public ValueTask DisposeAsync()
        {
            _fillers.ForEach(s => s.Dispose());
            _listener.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
