using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using BindProxy.Configuration;
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
/// <para>
/// Given a <see cref="TlsLeg"/> (<see cref="UseTls"/>), the socket is read and written through an
/// <see cref="SslStream"/> instead, after its handshake: the pipe, the byte counts and the sends
/// are then the plaintext, at the same points as a plaintext socket's, and the half-close sends
/// TLS close_notify before the FIN.
/// </para>
/// </remarks>
internal sealed class PipeSocket : IAsyncDisposable
{
    /// <summary>
    /// Full reads in a row (1 MiB at 64 KiB each) before a receive loop that may hold the socket
    /// engine's thread lets the other connections go first. Each yield costs a thread-pool wake-up;
    /// at 4 reads a turn they made a bulk Kafka produce cost the proxy half as much CPU again, and
    /// 16 keeps the ping p99 beside bulk streams where HAProxy's is (bench/README.md).
    /// </summary>
    internal const int MaxReadsPerTurn = 16;

    private readonly Socket _socket;
    private readonly Pipe _pipe;
    private readonly int _receiveSize;
    private Task _receiving = Task.CompletedTask;
    private long _bytesReceived;
    private long _bytesSent;
    private int _aborted;
    private int _sendShutdownOnce;
    private int _disposed;
    private volatile bool _receivePaused;
    private volatile bool _flushing;
    private TlsLeg? _tlsLeg;
    private SslStream? _tls;
    private Task<string?>? _handshake;
    private object? _handshakeLock;
    private Task _sendShutdown = Task.CompletedTask;
    private bool _watchFirstBytes;
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

    /// <summary>The TLS of this side, when it has one.</summary>
    public TlsLeg? TlsLeg => _tlsLeg;

    /// <summary>What the handshake negotiated; null before it ends, when it failed, or without TLS.</summary>
    public TlsSession? TlsSession { get; private set; }

    /// <summary>
    /// True when the first bytes the peer sent looked like TLS (a handshake record 0x16 0x03 or an
    /// alert 0x15 0x03) where plaintext was expected; receiving then stopped before passing them on.
    /// </summary>
    public bool PeerSpokeTls { get; private set; }

    /// <summary>Why the receive side ended in error, in words (a TLS alert, a record that is not TLS); null otherwise.</summary>
    public string? ReceiveFailure { get; private set; }

    /// <summary>
    /// Reads and writes this socket through TLS: the handshake runs before the first byte moves
    /// (<see cref="HandshakeAsync"/>). Called before <see cref="StartReceiving"/>.
    /// </summary>
    public void UseTls(TlsLeg leg) => _tlsLeg = leg;

    /// <summary>
    /// Stops receiving, before passing anything on, when the peer's first bytes look like TLS
    /// (<see cref="PeerSpokeTls"/>): on a side that should speak plaintext, TLS is a mistake of
    /// configuration that the other side should not be shown as data. Called before <see cref="StartReceiving"/>.
    /// </summary>
    public void RefuseTls() => _watchFirstBytes = true;

    /// <summary>
    /// The TLS handshake (started on first call, bounded by the leg's timeout); null when it
    /// succeeded (or there is no TLS), else why it failed in words.
    /// </summary>
    public Task<string?> HandshakeAsync() => _tlsLeg is null ? Task.FromResult<string?>(null) : LazyInitializer.EnsureInitialized(ref _handshake, ref _handshakeLock, RunHandshakeAsync);

    private async Task<string?> RunHandshakeAsync()
    {
        var leg = _tlsLeg!;

        // One deadline for the whole handshake, the wait for the client's first byte included: a
        // client that sends one byte just before it must not be given a second timeout's worth.
        using var timeout = new CancellationTokenSource(leg.HandshakeTimeout);
        if (leg.IsServer && await FirstByteAsync(leg.HandshakeTimeout, timeout.Token).ConfigureAwait(false) is { } problem)
        {
            return problem;
        }

        try
        {
            _tls = await leg.AuthenticateAsync(new NetworkStream(_socket, ownsSocket: false), timeout.Token).ConfigureAwait(false);
            TlsSession = TlsLeg.Describe(_tls);
            return null;
        }
        catch (OperationCanceledException)
        {
            return $"did not finish the TLS handshake within {leg.HandshakeTimeout.TotalSeconds:0.#} s";
        }
        catch (Exception e) when (e is AuthenticationException or IOException or SocketException or ObjectDisposedException)
        {
            return leg.CertificateProblem ?? HandshakeFailure(e, leg.IsServer);
        }
    }

    /// <summary>
    /// On a TLS listener: waits for the client's first byte, which starts a TLS handshake (0x16)
    /// unless the client speaks plaintext; null when it does.
    /// </summary>
    private async Task<string?> FirstByteAsync(TimeSpan timeout, CancellationToken deadline)
    {
        var first = new byte[1];
        try
        {
            int read = await _socket.ReceiveAsync(first, SocketFlags.Peek, deadline).ConfigureAwait(false);
            return read == 0 ? "closed the connection before its TLS handshake"
                : first[0] == 0x16 ? null
                : $"sent plaintext (first byte 0x{first[0]:x2}) to a TLS listener: the route listens with TLS (ListenTls); set the client to TLS (security.protocol=SSL, ssl.ca.location=the proxy's CA), or remove ListenTls";
        }
        catch (OperationCanceledException)
        {
            return $"sent nothing within the handshake timeout ({timeout.TotalSeconds:0.#} s) on a TLS listener";
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return "closed the connection before its TLS handshake";
        }
    }

    /// <summary>A failed handshake in words: what the peer did, and what that usually means.</summary>
    private static string HandshakeFailure(Exception e, bool server)
    {
        var inner = e;
        while (inner.InnerException is not null)
        {
            inner = inner.InnerException;
        }

        string text = inner.Message;
        if (text.Contains("frame size", StringComparison.OrdinalIgnoreCase) || text.Contains("wrong version number", StringComparison.OrdinalIgnoreCase)
            || text.Contains("packet length too long", StringComparison.OrdinalIgnoreCase) || text.Contains("record layer failure", StringComparison.OrdinalIgnoreCase))
        {
            return server
                ? $"sent bytes that are not TLS to a TLS listener ({text})"
                : "answered the TLS handshake with bytes that are not TLS: it listens in plaintext; remove Tls from the route (or set Tls:Enabled to false)";
        }

        if (text.Contains("unexpected EOF", StringComparison.OrdinalIgnoreCase) || text.Contains("0 bytes", StringComparison.Ordinal) || inner is SocketException)
        {
            return server
                ? "closed the connection during the TLS handshake (it probably refused the proxy's certificate: give it the proxy's CA, ssl.ca.location)"
                : "closed the connection during the TLS handshake: it may not speak TLS on this port, or refuse this TLS version or server name";
        }

        return $"failed the TLS handshake: {text}";
    }

    /// <summary>
    /// Continues the counts of a connection that moved here from another way of forwarding it (the
    /// relay engine): bytes already received from and sent to the peer, so byte counts and a
    /// capture's stream offsets go on from them. Called before <see cref="StartReceiving"/>.
    /// </summary>
    public void ContinueCounts(long received, long sent)
    {
        Volatile.Write(ref _bytesReceived, received);
        Volatile.Write(ref _bytesSent, sent);
    }

    public void StartReceiving() => _receiving = ReceiveLoopAsync();

    private async Task ReceiveLoopAsync()
    {
        var writer = _pipe.Writer;
        bool waitForData = true;
        int inARow = 0;

        // True once an await here completed asynchronously: with inline completions the loop then
        // runs on the socket engine's thread. A loop already moved to the thread pool keeps going
        // there without a yield, which would cost a thread wake-up (a futex call and a context
        // switch) every turn for nothing.
        bool mayHoldEngine = true;
        try
        {
            if (_tlsLeg is not null && await HandshakeAsync().ConfigureAwait(false) is { } failed)
            {
                ReceiveFailure = failed;
                ReceiveEnd = IsAborted ? ReceiveEnd.Aborted : ReceiveEnd.Error;
                return;
            }

            while (true)
            {
                if (waitForData)
                {
                    // Wait for readability without holding a buffer, so an idle connection pins no memory.
                    var ready = _tls is null
                        ? _socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None)
                        : _tls.ReadAsync(Memory<byte>.Empty);
                    mayHoldEngine |= !ready.IsCompleted;
                    await ready.ConfigureAwait(false);
                    inARow = 0;
                }
                else if (++inARow >= MaxReadsPerTurn && mayHoldEngine)
                {
                    // A stream that always has more would keep the thread it runs on (with inline
                    // completions, the socket engine's, which every connection's events wait for)
                    // from the rest: after a turn's reads it goes to the back of the thread pool's queue.
                    inARow = 0;
                    mayHoldEngine = false;
                    await Task.Yield();
                }

                var memory = writer.GetMemory(_receiveSize);
                var receive = _tls is null
                    ? _socket.ReceiveAsync(memory, SocketFlags.None)
                    : _tls.ReadAsync(memory);
                mayHoldEngine |= !receive.IsCompleted;
                int received = await receive.ConfigureAwait(false);
                if (received == 0)
                {
                    _tap?.Received(default, _bytesReceived);
                    FinOrder = Interlocked.Increment(ref s_finCounter);
                    ReceiveEnd = ReceiveEnd.Fin;
                    break;
                }

                if (_watchFirstBytes)
                {
                    _watchFirstBytes = false;
                    if (received >= 2 && memory.Span[0] is 0x16 or 0x15 && memory.Span[1] == 0x03)
                    {
                        // Read, and not forwarded: a capture has them on this leg alone.
                        _tap?.Received(memory.Span[..received], _bytesReceived);

                        // Ended as by the peer's FIN, so the other side is closed cleanly, not reset.
                        PeerSpokeTls = true;
                        FinOrder = Interlocked.Increment(ref s_finCounter);
                        ReceiveEnd = ReceiveEnd.Fin;
                        break;
                    }
                }

                if (_tap is { } tap)
                {
                    if (tap.Connection.ForwardsUnchanged)
                    {
                        // Sent on as they are at the same offset: one report for both legs (the
                        // other leg's send reports nothing), before the send, as a send is reported.
                        tap.Relayed(memory.Span[..received], _bytesReceived, _bytesReceived, received);
                    }
                    else
                    {
                        tap.Received(memory.Span[..received], _bytesReceived);
                    }
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

                mayHoldEngine |= !pending.IsCompleted;
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
        catch (IOException e) when (e.InnerException is SocketException socketError)
        {
            ReceiveError = socketError.SocketErrorCode;
            ReceiveEnd = IsAborted ? ReceiveEnd.Aborted : Classify(socketError.SocketErrorCode);
        }
        catch (Exception e) when (e is IOException or AuthenticationException)
        {
            // TLS after the handshake: an alert (a client certificate refused after a TLS 1.3
            // handshake), a record that does not decrypt, a close without close_notify.
            // Ended as by the peer's FIN, so the other side is closed cleanly and the line says why.
            ReceiveFailure = HandshakeFailure(e, _tlsLeg?.IsServer ?? false);
            FinOrder = Interlocked.Increment(ref s_finCounter);
            ReceiveEnd = IsAborted ? ReceiveEnd.Aborted : ReceiveEnd.Fin;
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
            if (_tlsLeg is not null && await HandshakeAsync().ConfigureAwait(false) is not null)
            {
                return SocketError.NotConnected;
            }

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
        catch (IOException e)
        {
            return e.InnerException is SocketException socketError ? socketError.SocketErrorCode : SocketError.ConnectionReset;
        }
    }

    private async ValueTask SendAllAsync(ReadOnlyMemory<byte> memory, CancellationToken cancellationToken)
    {
        // Reported before it is sent, so a capture never has the answer before the question
        // (by the other leg's receipt, when the bytes are forwarded unchanged).
        if (_tap is { } tap && !tap.Connection.ForwardsUnchanged)
        {
            tap.Sent(memory.Span, _bytesSent);
        }
        if (_tls is { } tls)
        {
            await tls.WriteAsync(memory, cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref _bytesSent, _bytesSent + memory.Length);
            return;
        }

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
            await _sendShutdown.ConfigureAwait(false);

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
        if (Interlocked.Exchange(ref _sendShutdownOnce, 1) != 0 || IsAborted)
        {
            return;
        }

        if (_tls is { } tls)
        {
            _sendShutdown = ShutdownTlsAsync(tls);
            return;
        }

        ShutdownSocket();
    }

    /// <summary>TLS's own end of the stream (close_notify), then the FIN.</summary>
    private async Task ShutdownTlsAsync(SslStream tls)
    {
        try
        {
            await tls.ShutdownAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException or AuthenticationException
            or System.Security.Cryptography.CryptographicException)
        {
            // The peer is already gone, or the session failed (an alert): the receive side reports how.
        }

        ShutdownSocket();
    }

    private void ShutdownSocket()
    {
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
        await _sendShutdown.ConfigureAwait(false);
        if (_handshake is not null)
        {
            await _handshake.ConfigureAwait(false);
        }

        if (_tls is not null)
        {
            await _tls.DisposeAsync().ConfigureAwait(false);
        }

        await _pipe.Reader.CompleteAsync().ConfigureAwait(false);
    }
}
