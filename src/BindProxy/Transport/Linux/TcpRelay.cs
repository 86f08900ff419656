using System.Buffers;
using System.Net;
using System.Runtime.Versioning;

namespace BindProxy.Transport.Linux;

/// <summary>
/// One plain Tcp connection forwarded by an <see cref="EpollLoop"/>: both descriptors are
/// watched edge-triggered, and on each event the relay reads what is there into the loop's
/// buffer and sends it straight on. Only when the other side cannot take it all does the
/// connection hold a buffer of its own (and stop reading that direction until it drains), so an
/// idle connection holds no buffer, no pipe and no pending operation.
/// </summary>
/// <remarks>
/// Same semantics as the pipe path: a FIN is passed on as a half-close while the other direction
/// keeps flowing; a reset or failure on either side resets both. A turn reads at most
/// <see cref="MaxReadsPerTurn"/> times in each direction; a relay with more to read then asks its
/// loop for another turn, which comes after every other connection that is ready, so a bulk
/// transfer cannot keep the loop from the connections beside it.
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed unsafe class TcpRelay : IEpollHandler, IConnectionLegs
{
    /// <summary>Reads (of up to the loop's buffer size each) per direction in one turn.</summary>
    internal const int MaxReadsPerTurn = 4;

    private const int ClientTag = 0;
    private const int UpstreamTag = 1;
    // EPOLLOUT is added to a socket's set only once a send to it would block.
    private const uint Watched = Libc.EpollIn | Libc.EpollRdHup;

    // Start's phases. Unregistered: only Start's thread touches the relay. Registering: the loop
    // may already handle the first socket, and a close it decides on waits (CloseDeferred) until
    // Start is done. Registered: the loop's alone.
    private const int Unregistered = 0;
    private const int Registering = 1;
    private const int Registered = 2;
    private const int CloseDeferred = 3;

    private readonly EpollLoop _loop;
    private Leg _client;
    private Leg _upstream;
    private Pending _toUpstream;
    private Pending _toClient;
    private IRelayOwner? _owner;
    private object? _state;
    private bool _clientFinFirst;
    private volatile bool _closing;
    private bool _finished;
    private int _registration;
    private int _abortRequested;
    private CloseReason _deferredReason;
    private bool _deferredAbortive;
    private bool _rescheduled;
    private byte[]? _startBuffer;
    private DescriptorReservation _reservation;

    /// <summary>
    /// Takes ownership of both sockets and the descriptors reserved for them: from here on the
    /// relay closes them (and gives the reservation back) when it ends, including when
    /// <see cref="Start"/> is never called — then the caller calls <see cref="Discard"/>.
    /// </summary>
    public TcpRelay(EpollLoop loop, SocketHandle client, SocketHandle upstream, DescriptorReservation reservation,
        IPEndPoint clientEndPoint, IPEndPoint listener, IPEndPoint source, IPEndPoint upstreamEndPoint)
    {
        _loop = loop;
        _reservation = reservation;
        _client.Socket = client;
        _client.Slot = -1;
        _client.Writable = true; // fresh connected sockets: EPOLLOUT only matters once a send blocks
        _upstream.Socket = upstream;
        _upstream.Slot = -1;
        _upstream.Writable = true;
        Client = clientEndPoint;
        Listener = listener;
        Source = source;
        Upstream = upstreamEndPoint;
    }

    public IPEndPoint Client { get; }

    public IPEndPoint Listener { get; }

    public IPEndPoint Source { get; }

    public IPEndPoint Upstream { get; }

    public long BytesToUpstream => Volatile.Read(ref _upstream.Sent);

    public long BytesToClient => Volatile.Read(ref _client.Sent);

    public long BytesReceived => Volatile.Read(ref _client.Received) + Volatile.Read(ref _upstream.Received);

    public long BufferedBytes => (Volatile.Read(ref _client.Received) - BytesToUpstream) + (Volatile.Read(ref _upstream.Received) - BytesToClient);

    public string State => (_closing, Volatile.Read(ref _client.ReadEnded), Volatile.Read(ref _upstream.ReadEnded)) switch
    {
        (false, false, false) => "open",
        (false, true, false) => "half-closed by client",
        (false, false, true) => "half-closed by upstream",
        _ => "closing",
    };

    /// <summary>Resets both sockets of a relay that will not be started (the handoff failed before <see cref="Start"/>).</summary>
    public void Discard()
    {
        _finished = true;
        _client.Socket.CloseAbortive();
        _upstream.Socket.CloseAbortive();
        _reservation.Return();
        _reservation = default;
    }

    /// <summary>
    /// Starts forwarding; <paramref name="owner"/> hears once (with <paramref name="state"/>), after
    /// both descriptors are closed (on the loop thread, or on this one if the relay ends before
    /// its sockets are registered), so it must not block. Does not throw: a failure here ends the
    /// relay like any other (reason <see cref="CloseReason.InternalError"/>).
    /// </summary>
    public void Start(IRelayOwner owner, object? state)
    {
        _owner = owner;
        _state = state;

        // The client has usually sent its first bytes by now: pass them on from this thread, so
        // the loop is not woken for them. (What is left past one turn's reads is reported by the
        // registration: epoll reports a socket that is readable when it is added.)
        bool open;
        try
        {
            _client.Readable = true;
            open = Pump(ref _client, ref _upstream, ref _toUpstream, upward: true, out _);
        }
        catch (Exception)
        {
            Fail(CloseReason.InternalError);
            open = false;
        }
        finally
        {
            if (_startBuffer is { } buffer)
            {
                _startBuffer = null;
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        if (!open)
        {
            return;
        }

        Volatile.Write(ref _registration, Registering);
        bool registered = Register(ref _upstream, UpstreamTag) && Register(ref _client, ClientTag);
        if (Interlocked.Exchange(ref _registration, Registered) == CloseDeferred)
        {
            _loop.Post(static state => ((TcpRelay)state!).FinishDeferred(), this);
        }
        else if (!registered || Volatile.Read(ref _abortRequested) != 0)
        {
            PostAbort();
        }
    }

    private bool Register(ref Leg leg, int tag)
    {
        uint events = Watched | (Volatile.Read(ref leg.WantsOut) != 0 ? Libc.EpollOut : 0);
        try
        {
            int slot = _loop.Register(leg.Socket, events, this, tag);
            Interlocked.Exchange(ref leg.Slot, slot);

            // The loop may have found this socket full since WantsOut was read (see WatchWritable).
            return (events & Libc.EpollOut) != 0 || Volatile.Read(ref leg.WantsOut) == 0 || _loop.Modify(slot, Watched | Libc.EpollOut);
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    public void Abort()
    {
        _closing = true;
        Interlocked.Exchange(ref _abortRequested, 1);
        if (Volatile.Read(ref _registration) >= Registered)
        {
            PostAbort(); // otherwise Start sees the request once it has registered
        }
    }

    private void PostAbort() => _loop.Post(static state =>
    {
        var relay = (TcpRelay)state!;
        relay.Fail(relay._loop.IsFailed ? CloseReason.InternalError : CloseReason.ProxyAborted);
    }, this);

    /// <summary>The loop could not go on with this relay (see <see cref="IEpollHandler.OnLoopFailure"/>): both sides are reset.</summary>
    public void OnLoopFailure(Exception error) => Fail(CloseReason.InternalError);

    // The loop reports a peer's reset itself (EPOLLERR), whether or not that side is being read.
    public CloseReason? ResetWhilePaused() => null;

    public void OnEvents(uint events, int tag)
    {
        if (_finished)
        {
            return;
        }

        ref var leg = ref tag == ClientTag ? ref _client : ref _upstream;
        if ((events & (Libc.EpollIn | Libc.EpollRdHup | Libc.EpollHup | Libc.EpollErr)) != 0)
        {
            leg.Readable = true;
        }

        if ((events & (Libc.EpollRdHup | Libc.EpollHup)) != 0)
        {
            leg.FinPending = true;
        }

        if ((events & (Libc.EpollOut | Libc.EpollHup | Libc.EpollErr)) != 0)
        {
            leg.Writable = true;
        }

        if ((events & Libc.EpollErr) != 0 && RawSocket.PendingError(leg.Socket) != 0)
        {
            Fail(tag == ClientTag ? CloseReason.ClientReset : CloseReason.UpstreamReset);
            return;
        }

        if (events == 0)
        {
            _rescheduled = false; // the turn asked for
        }
        else if (_rescheduled)
        {
            return; // noted; the turn already asked for comes after this turn's events
        }

        if (Pump(ref _client, ref _upstream, ref _toUpstream, upward: true, out bool moreUp) &&
            Pump(ref _upstream, ref _client, ref _toClient, upward: false, out bool moreDown))
        {
            if (moreUp || moreDown)
            {
                _rescheduled = true;
                _loop.Reschedule(this, tag);
            }
            else if (_client.ReadEnded && _upstream.ReadEnded && _toUpstream.Count == 0 && _toClient.Count == 0)
            {
                Finish(_clientFinFirst ? CloseReason.ClientClosed : CloseReason.UpstreamClosed, abortive: false);
            }
        }
    }

    /// <summary>
    /// Moves bytes <paramref name="from"/> → <paramref name="to"/> until one would block or this
    /// turn's reads are used up (<paramref name="more"/>: the socket may have more to read);
    /// false once the relay has ended.
    /// </summary>
    private bool Pump(ref Leg from, ref Leg to, ref Pending pending, bool upward, out bool more)
    {
        more = false;
        int reads = 0;
        while (true)
        {
            if (pending.Count > 0)
            {
                if (!to.Writable)
                {
                    return true;
                }

                if (!Send(ref to, ref pending, upward))
                {
                    return false;
                }

                if (pending.Count > 0)
                {
                    return true;
                }

                ArrayPool<byte>.Shared.Return(pending.Buffer!);
                pending.Buffer = null;
                continue;
            }

            if (from.ReadEnded || !from.Readable)
            {
                return true;
            }

            if (reads++ == MaxReadsPerTurn)
            {
                more = true;
                return true;
            }

            var buffer = ReadBuffer;
            nint received;
            fixed (byte* p = buffer)
            {
                received = Libc.Recv(from.Socket.Fd, p, (nuint)_loop.BufferSize, Libc.MsgDontWait);
            }

            if (received > 0)
            {
                Volatile.Write(ref from.Received, from.Received + received);

                // Short read: the socket is drained and the next arrival raises a new edge — unless
                // the peer's FIN is already queued behind these bytes, which raises none.
                if (received < _loop.BufferSize && !from.FinPending)
                {
                    from.Readable = false;
                }

                pending.Buffer = buffer;
                pending.Offset = 0;
                pending.Count = (int)received;
                if (to.Writable && !Send(ref to, ref pending, upward))
                {
                    pending = default;
                    return false;
                }

                if (pending.Count > 0)
                {
                    // The other side is full: this connection keeps the buffer until it drains.
                    KeepReadBuffer();
                    return true;
                }

                pending.Buffer = null;
                continue;
            }

            if (received == 0)
            {
                from.ReadEnded = true;
                _clientFinFirst |= upward && !to.ReadEnded;

                // Pass the FIN on — unless the other direction is over too, so that both sockets
                // are closed right after this (close sends the FIN).
                if (!to.ReadEnded || (upward ? _toClient.Count : _toUpstream.Count) > 0)
                {
                    Libc.Shutdown(to.Socket.Fd, Libc.ShutWr);
                }

                return true;
            }

            int errno = Libc.Errno;
            if (errno == Libc.EAgain)
            {
                from.Readable = false;
                return true;
            }

            if (errno != Libc.EIntr)
            {
                Fail(upward ? CloseReason.ClientReset : CloseReason.UpstreamReset);
                return false;
            }
        }
    }

    /// <summary>Sends what it can of <paramref name="pending"/>; false (relay failed) when the destination is gone.</summary>
    private bool Send(ref Leg to, ref Pending pending, bool upward)
    {
        while (pending.Count > 0)
        {
            nint sent;
            fixed (byte* p = pending.Buffer)
            {
                sent = Libc.Send(to.Socket.Fd, p + pending.Offset, (nuint)pending.Count, Libc.MsgDontWait | Libc.MsgNoSignal);
            }

            if (sent >= 0)
            {
                Volatile.Write(ref to.Sent, to.Sent + sent);
                pending.Offset += (int)sent;
                pending.Count -= (int)sent;
                continue;
            }

            int errno = Libc.Errno;
            if (errno == Libc.EAgain)
            {
                to.Writable = false;
                if (WatchWritable(ref to))
                {
                    return true;
                }

                Fail(CloseReason.ProxyAborted);
                return false;
            }

            if (errno != Libc.EIntr)
            {
                Fail(upward ? CloseReason.UpstreamReset : CloseReason.ClientReset);
                return false;
            }
        }

        return true;
    }

    /// <summary>Reads go to the loop's buffer, or during Start (on another thread) to one of Start's own.</summary>
    private byte[] ReadBuffer => Volatile.Read(ref _registration) == Unregistered
        ? _startBuffer ??= ArrayPool<byte>.Shared.Rent(_loop.BufferSize)
        : _loop.Buffer;

    /// <summary>The buffer just read into now holds bytes the other side has not taken: the connection keeps it.</summary>
    private void KeepReadBuffer()
    {
        if (Volatile.Read(ref _registration) == Unregistered)
        {
            _startBuffer = null;
        }
        else
        {
            _loop.ReplaceBuffer();
        }
    }

    /// <summary>
    /// Adds EPOLLOUT to the socket's set, once. Before Start has registered the socket it only
    /// records the wish, which Start then honours; both sides use full fences, so at least one of
    /// them sees the other's write.
    /// </summary>
    private bool WatchWritable(ref Leg leg)
    {
        if (Volatile.Read(ref leg.WantsOut) != 0)
        {
            return true;
        }

        Interlocked.Exchange(ref leg.WantsOut, 1);
        int slot = Volatile.Read(ref leg.Slot);
        return slot < 0 || _loop.Modify(slot, Watched | Libc.EpollOut);
    }

    private void Fail(CloseReason reason) => Finish(reason, abortive: true);

    private void Finish(CloseReason reason, bool abortive)
    {
        if (_finished)
        {
            return;
        }

        _finished = true;
        _closing = true;
        if (Volatile.Read(ref _registration) == Registering)
        {
            _deferredReason = reason;
            _deferredAbortive = abortive;
            if (Interlocked.CompareExchange(ref _registration, CloseDeferred, Registering) == Registering)
            {
                return; // Start posts FinishDeferred once both sockets are registered.
            }
        }

        Close(reason, abortive);
    }

    private void FinishDeferred() => Close(_deferredReason, _deferredAbortive);

    private void Close(CloseReason reason, bool abortive)
    {
        Close(ref _client, abortive);
        Close(ref _upstream, abortive);
        _reservation.Return();
        _reservation = default;
        Release(ref _toUpstream);
        Release(ref _toClient);
        _owner!.OnRelayClosed(this, _state, reason);
    }

    private void Close(ref Leg leg, bool abortive)
    {
        if (leg.Slot >= 0)
        {
            _loop.Unregister(leg.Slot, keepOpen: false);
            leg.Slot = -1;
        }

        if (abortive)
        {
            leg.Socket.CloseAbortive();
        }
        else
        {
            leg.Socket.Dispose();
        }
    }

    private void Release(ref Pending pending)
    {
        // The loop's buffer and Start's are only borrowed within one call (Start gives its own
        // back); a kept one is the connection's.
        if (pending.Buffer is { } buffer && !ReferenceEquals(buffer, _loop.Buffer) && !ReferenceEquals(buffer, _startBuffer))
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        pending = default;
    }

    private struct Leg
    {
        public SocketHandle Socket;
        public int Slot;
        public int WantsOut; // EPOLLOUT asked for (by the loop, or by Start before registering)
        public bool Readable;
        public bool Writable;
        public bool ReadEnded;
        public bool FinPending;
        public long Received;
        public long Sent;
    }

    private struct Pending
    {
        public byte[]? Buffer;
        public int Offset;
        public int Count;
    }
}
