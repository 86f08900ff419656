using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace BindProxy.Tests.Infrastructure;

/// <summary>A real TCP server on loopback that runs <c>handler</c> for each accepted socket.</summary>
public sealed class TestServer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _acceptLoop;
    private readonly ConcurrentBag<Task> _handlers = [];
    private int _disposed;

    private TestServer(Socket listener, Func<Socket, CancellationToken, Task> handler)
    {
        _listener = listener;
        _acceptLoop = AcceptLoopAsync(handler);
    }

    /// <summary>Remote endpoints of every accepted connection, in accept order.</summary>
    public ConcurrentQueue<IPEndPoint> Accepted { get; } = new();

    public IPEndPoint Endpoint => (IPEndPoint)_listener.LocalEndPoint!;

    public string Address => Endpoint.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{Endpoint.Address}]:{Endpoint.Port}" : Endpoint.ToString();

    public static TestServer Start(Func<Socket, CancellationToken, Task> handler, IPAddress? address = null, int backlog = 512)
    {
        address ??= IPAddress.Loopback;
        var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(address, 0));
        listener.Listen(backlog);
        return new TestServer(listener, handler);
    }

    /// <summary>Echoes everything back; half-closes after the client's FIN.</summary>
    public static TestServer Echo(IPAddress? address = null) => Start(async (socket, ct) =>
    {
        var buffer = new byte[64 * 1024];
        while (true)
        {
            int n = await socket.ReceiveAsync(buffer, SocketFlags.None, ct);
            if (n == 0)
            {
                socket.Shutdown(SocketShutdown.Send);
                return;
            }

            await socket.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, ct);
        }
    }, address);

    /// <summary>Sends 64 KiB at a time as fast as the peer takes it, counting into <paramref name="sent"/>.</summary>
    public static TestServer Flood(SentCounter sent) => Start(async (socket, ct) =>
    {
        var chunk = new byte[64 * 1024];
        while (!ct.IsCancellationRequested)
        {
            sent.Add(await socket.SendAsync(chunk, SocketFlags.None, ct));
        }
    });

    /// <summary>Bytes a <see cref="Flood"/> server has sent.</summary>
    public sealed class SentCounter
    {
        private long _value;

        public long Value => Interlocked.Read(ref _value);

        public void Add(int bytes) => Interlocked.Add(ref _value, bytes);

        /// <summary>Waits until the flood has started and its count stops growing (no change for 300 ms, within 30 s); returns it.</summary>
        public async Task<long> WaitUntilStalledAsync()
        {
            await Poll.UntilAsync(() => Value > 0, "the flood to send its first bytes");
            return await Poll.SteadyAsync(() => Value, TimeSpan.FromMilliseconds(300), "the flood to stall", TimeSpan.FromSeconds(30));
        }
    }

    private async Task AcceptLoopAsync(Func<Socket, CancellationToken, Task> handler)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            Accepted.Enqueue((IPEndPoint)socket.RemoteEndPoint!);
            _handlers.Add(Task.Run(async () =>
            {
                using (socket)
                {
                    try
                    {
                        await handler(socket, _stop.Token);
                    }
                    catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
                    {
                    }
                }
            }));
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stop.Cancel();
        _listener.Dispose();
        await _acceptLoop;
        await Task.WhenAll(_handlers).WaitAsync(TimeSpan.FromSeconds(10));
        _stop.Dispose();
    }
}
