using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using BindProxy.Capture;

namespace BindProxy.Transport;

/// <summary>
/// One TCP socket with a receive loop that fills a <see cref="Pipe"/> and a send path that
/// writes straight from the caller's buffers (the other side's receive pipe), so forwarded
/// bytes are copied once, kernel to pipe, and sent from there. Used for both the accepted
/// client socket and the outbound upstream socket.
/// </summary>
/// <remarks>
/// Unlike Kestrel's stock socket transport, finishing the send side here is a real TCP
/// half-close (<c>shutdown(SHUT_WR)</c>): the receive side keeps flowing.
/// </remarks>
internal sealed class PipeSocket : IAsyncDisposable
{
    /// <summary>Full reads in a row before the receive loop lets the other connections go first (as the relay engine's turn).</summary>
    internal const int MaxReadsPerTurn = 4;

    private readonly Socket _socket;
    private readonly Pipe _pipe;
    private readonly int _receiveSize;
    private Task _receiving = Task.CompletedTask;
    private long _bytesReceived;
    private long _bytesSent;
    private int _aborted;
    private int _sendShutdown;
    private int _disposed;
    private volatile bool _receivePaused;
    private volatile bool _flushing;
    private volatile LegTap? _tap;

    /// <param name="local">The socket's own address when the caller knows it already (asked of the socket otherwise).</param>
    /// <param name="remote">The peer's address when the caller knows it already: a socket made from an
    /// accepted descriptor cannot tell it once the peer has reset.</param>
    public PipeSocket(Socket socket, TransportOptions options, IPEndPoint? local = null, IPEndPoint? remote = null)
    {
        _socket = socket;
        _receiveSize = options.ReceiveBufferSize;
        _pipe = new Pipe(options.PipeOptions);
        LocalEndPoint = local ?? (IPEndPoint)socket.LocalEndPoint!;
        RemoteEndPoint = remote ?? (IPEndPoint)socket.RemoteEndPoint!;
    }

    /// <summary>Where this leg's bytes, FIN and RST are reported while a capture wants them; null (nothing to do) otherwise.</summary>
    public LegTap? Tap { get => _tap; set => _tap = value; }

    /// <summary>The socket itself, for options and for stream-shaped callers.</summary>
    public Socket Socket => _socket;

    public IPEndPoint LocalEndPoint { get; }

    public IPEndPoint RemoteEndPoint { get; }

    /// <summary>Bytes received from the peer into the pipe.</summary>
    public long BytesReceived => Volatile.Read(ref _bytesReceived);

    /// <summary>Bytes handed to the kernel for the peer.</summary>
    public long BytesSent => Volatile.Read(ref _bytesSent);

    /// <summary>What the peer sent, in order; completes after FIN, reset or abort.</summary>
    public PipeReader Input => _pipe.Reader;

    public ReceiveEnd ReceiveEnd { get; private set; }

    public SocketError ReceiveError { get; private set; }

    public bool IsAborted => Volatile.Read(ref _aborted) != 0;

    /// <summary>True while the receive loop waits for the reader to make room (the socket is not being read).</summary>
    public bool ReceivePaused => _receivePaused;

    /// <summary>The socket's pending error (SO_ERROR), e.g. a reset that arrived while receiving was paused.</summary>
    public SocketError PendingError()
    {
        try
        {
            return (SocketError)(int)_socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return SocketError.Success;
        }
    }

    public void StartReceiving() => _receiving = ReceiveLoopAsync();

    private async Task ReceiveLoopAsync()
    {
        var writer = _pipe.Writer;
        bool waitForData = true;
        int inARow = 0;
        try
        {
            while (true)
            {
                if (waitForData)
                {
                    // Wait for readability without holding a buffer, so an idle connection pins no memory.
                    await _socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None).ConfigureAwait(false);
                    inARow = 0;
                }
                else if (++inARow == MaxReadsPerTurn)
                {
                    // A stream that always has more would keep the thread it runs on (with inline
                    // completions, the socket engine's, which every connection's events wait for)
                    // from the rest: after a turn's reads it goes to the back of the thread pool's queue.
                    inARow = 0;
                    await Task.Yield();
                }

                var memory = writer.GetMemory(_receiveSize);
                int received = await _socket.ReceiveAsync(memory, SocketFlags.None).ConfigureAwait(false);
                _tap?.Received(memory.Span[..received], _bytesReceived);
                if (received == 0)
                {
                    FinOrder = Interlocked.Increment(ref s_finCounter);
                    ReceiveEnd = ReceiveEnd.Fin;
                    break;
                }

                writer.Advance(received);
                Volatile.Write(ref _bytesReceived, _bytesReceived + received);

                // A full buffer means more is probably queued: skip the readiness wait next time.
                waitForData = received < memory.Length;

                var pending = writer.FlushAsync();
                if (!pending.IsCompleted)
                {
                    // Backpressure: the other side is not taking bytes, so this socket is not read
                    // until it does. A reset from this peer then shows only as a pending socket error.
                    _receivePaused = true;
                }

                var flush = await pending.ConfigureAwait(false);
                _receivePaused = false;
                if (flush.IsCompleted || flush.IsCanceled)
                {
                    ReceiveEnd = ReceiveEnd.Aborted;
                    break;
                }
            }
        }
        catch (SocketException e)
        {
            ReceiveError = e.SocketErrorCode;
            ReceiveEnd = IsAborted ? ReceiveEnd.Aborted : Classify(e.SocketErrorCode);
            _tap?.Reset(fromPeer: ReceiveEnd == ReceiveEnd.Reset);
        }
        catch (ObjectDisposedException)
        {
            ReceiveEnd = ReceiveEnd.Aborted;
        }
        finally
        {
            await writer.CompleteAsync().ConfigureAwait(false);
        }
    }

    private static long s_finCounter;

    /// <summary>
    /// When the peer's FIN was seen, as a process-wide sequence number (0: not yet): tells which
    /// side closed first even when the two directions end on different threads.
    /// </summary>
    public long FinOrder { get; private set; }

    private static ReceiveEnd Classify(SocketError error) => error switch
    {
        SocketError.ConnectionReset or SocketError.ConnectionAborted or SocketError.Shutdown => ReceiveEnd.Reset,
        SocketError.OperationAborted or SocketError.Interrupted => ReceiveEnd.Aborted,
        _ => ReceiveEnd.Error,
    };

    /// <summary>Sends every byte of <paramref name="buffer"/>; returns the socket error instead of throwing.</summary>
    public async ValueTask<SocketError> SendAsync(ReadOnlySequence<byte> buffer, CancellationToken cancellationToken)
    {
        try
        {
            if (buffer.IsSingleSegment)
            {
                await SendAllAsync(buffer.First, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                foreach (var segment in buffer)
                {
                    await SendAllAsync(segment, cancellationToken).ConfigureAwait(false);
                }
            }

            return SocketError.Success;
        }
        catch (SocketException e)
        {
            return e.SocketErrorCode;
        }
        catch (ObjectDisposedException)
        {
            return SocketError.OperationAborted;
        }
        catch (OperationCanceledException)
        {
            return SocketError.OperationAborted;
        }
    }

    private async ValueTask SendAllAsync(ReadOnlyMemory<byte> memory, CancellationToken cancellationToken)
    {
        // Reported before it is sent, so a capture never has the answer before the question.
        _tap?.Sent(memory.Span, _bytesSent);
        while (!memory.IsEmpty)
        {
            int sent = await _socket.SendAsync(memory, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref _bytesSent, _bytesSent + sent);
            memory = memory[sent..];
        }
    }

    /// <summary>True while <see cref="FlushAsync"/> waits for the peer.</summary>
    public bool IsFlushing => _flushing;

    /// <summary>Bytes sent to the peer that it has not acknowledged yet, a FIN counting one (Linux; 0 elsewhere).</summary>
    public int Unacknowledged => OperatingSystem.IsLinux() ? Linux.SendQueue.Unacknowledged(_socket.SafeHandle) : 0;

    /// <summary>The send side as the kernel holds it (Linux; null elsewhere).</summary>
    public SendQueueInfo? InspectSendQueue() => OperatingSystem.IsLinux() ? Linux.SendQueue.Inspect(_socket.SafeHandle) : null;

    /// <summary>
    /// After the FIN was sent: waits until the peer has acknowledged everything sent to it, so the
    /// socket is not closed with bytes still queued (a closed socket's queue is an orphan's, which the
    /// kernel may drop without telling the peer). Ends early when the socket is aborted, which is how
    /// the sweeper's flush timeout ends a peer that never takes the rest. Linux only; elsewhere
    /// the kernel's own graceful close is all there is, and this returns at once.
    /// </summary>
    public async ValueTask FlushAsync()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        _flushing = true;
        try
        {
            // Usually acknowledged within a round trip; a slow reader is asked less and less often.
            int delayMs = 1;
            while (!IsAborted && !Linux.SendQueue.Delivered(_socket.SafeHandle))
            {
                await Task.Delay(delayMs).ConfigureAwait(false);
                delayMs = Math.Min(delayMs * 2, 100);
            }
        }
        finally
        {
            _flushing = false;
        }
    }

    /// <summary>Half-closes: sends FIN to the peer; receiving goes on.</summary>
    public void ShutdownSend()
    {
        if (Interlocked.Exchange(ref _sendShutdown, 1) != 0 || IsAborted)
        {
            return;
        }

        try
        {
            _socket.Shutdown(SocketShutdown.Send);
            _tap?.SentFin(BytesSent);
        }
        catch (SocketException)
        {
            // The peer is already gone; the receive side reports how.
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>Resets the connection (RST) and stops both directions now.</summary>
    public void Abort()
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0)
        {
            return;
        }

        _tap?.Reset(fromPeer: false);
        try
        {
            _socket.LingerState = new LingerOption(true, 0);
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }

        _socket.Dispose();
        _pipe.Writer.CancelPendingFlush();
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _socket.Dispose();
        _pipe.Writer.CancelPendingFlush();
        await _receiving.ConfigureAwait(false);
        await _pipe.Reader.CompleteAsync().ConfigureAwait(false);
    }
}
