using System.Buffers;
using System.Net;
using System.Net.Sockets;

namespace BindProxy.Bench.Echo;

/// <summary>What the server does with the bytes it receives.</summary>
internal enum EchoMode
{
    /// <summary>Sends every byte back.</summary>
    Echo,

    /// <summary>Discards every byte.</summary>
    Sink,
}

/// <summary>
/// A small echo/sink server: the common upstream of every contender in the latency, churn and hold
/// runs. Idle connections wait with a zero-byte receive so that holding thousands costs no buffers.
/// With <paramref name="threadPerConnection"/> each connection gets a thread of its own with
/// blocking calls instead: a connection whose data keeps arriving then cannot hold up the others
/// (an async loop whose receives keep completing at once runs on without yielding), which is what
/// the fairness run needs of its upstream.
/// </summary>
internal sealed class EchoServer(IPEndPoint listen, EchoMode mode, int backlog, bool threadPerConnection = false)
{
    private const int BufferSize = 16 * 1024;

    private int _open;
    private long _accepted;

    public long Accepted => Interlocked.Read(ref _accepted);

    public int Open => Volatile.Read(ref _open);

    public async Task RunAsync(Action<IPEndPoint> onListening, CancellationToken cancellationToken)
    {
        using var listener = new Socket(listen.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Bind(listen);
        listener.Listen(backlog);
        onListening((IPEndPoint)listener.LocalEndPoint!);

        // One accept loop per core keeps accept off the critical path during connection churn.
        var loops = new Task[Math.Max(2, Environment.ProcessorCount)];
        for (var i = 0; i < loops.Length; i++)
        {
            loops[i] = AcceptLoopAsync(listener, cancellationToken);
        }

        await Task.WhenAll(loops);

        // Cancellation aborts every connection's pending receive; give them a moment to unwind.
        for (var i = 0; i < 50 && Open > 0; i++)
        {
            await Task.Delay(20, CancellationToken.None);
        }
    }

    private async Task AcceptLoopAsync(Socket listener, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                // Out of descriptors: back off instead of spinning; the listener keeps the backlog.
                // Anything else (a client that reset before accept) concerns one connection only.
                var outOfResources = e.SocketErrorCode is SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable;
                await Task.Delay(outOfResources ? 10 : 1, CancellationToken.None);
                continue;
            }

            Interlocked.Increment(ref _accepted);
            Interlocked.Increment(ref _open);

            if (threadPerConnection)
            {
                new Thread(() => Serve(socket, cancellationToken)) { IsBackground = true, Name = "echo connection" }.Start();
                continue;
            }

            // Each connection task observes its own errors and decrements the open count, which is
            // what shutdown waits on; nothing is left unobserved.
            _ = ServeAsync(socket, cancellationToken);
        }
    }

    private void Serve(Socket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[4 * BufferSize];
        try
        {
            using var closeOnCancel = cancellationToken.Register(socket.Dispose);
            socket.NoDelay = true;
            socket.Blocking = true;
            while (true)
            {
                var received = socket.Receive(buffer);
                if (received == 0)
                {
                    break;
                }

                if (mode == EchoMode.Echo)
                {
                    var pending = buffer.AsSpan(0, received);
                    while (!pending.IsEmpty)
                    {
                        pending = pending[socket.Send(pending)..];
                    }
                }
            }

            socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Resets are normal here, and cancellation disposes the socket.
        }
        finally
        {
            socket.Dispose();
            Interlocked.Decrement(ref _open);
        }
    }

    private async Task ServeAsync(Socket socket, CancellationToken cancellationToken)
    {
        byte[]? buffer = null;
        try
        {
            socket.NoDelay = true;
            while (true)
            {
                // Zero-byte receive: wait for data without holding a buffer.
                await socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, cancellationToken);
                buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
                var received = await socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.None, cancellationToken);
                if (received == 0)
                {
                    break;
                }

                if (mode == EchoMode.Echo)
                {
                    await socket.SendAsync(buffer.AsMemory(0, received), SocketFlags.None, cancellationToken);
                }

                ArrayPool<byte>.Shared.Return(buffer);
                buffer = null;
            }

            socket.Shutdown(SocketShutdown.Send);
        }
        catch (SocketException)
        {
            // Resets are normal here: clients of a load test abort connections.
        }
        catch (OperationCanceledException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            socket.Dispose();
            Interlocked.Decrement(ref _open);
        }
    }
}
