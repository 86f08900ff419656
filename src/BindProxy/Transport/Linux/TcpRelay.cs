using System.Buffers;
using System.Net;
using System.Runtime.Versioning;
using BindProxy.Capture;

namespace BindProxy.Transport.Linux;

/// <summary>
/// One plain Tcp connection forwarded by an <see cref="EpollLoop"/>: both descriptors are
/// watched edge-triggered, and on each event the relay reads what is there into the loop's
/// buffer and sends it straight on. Only when the other side cannot take it all does the
/// connection hold a buffer of its own (and stop reading that direction until it drains), so an
/// idle connection holds no buffer, no pipe and no pending operation.
/// </summary>
/// <remarks>
/// <para>
/// Its life is a <see cref="RelayState"/>, moved only by the transitions below. While
/// <see cref="RelayState.Connecting"/> it belongs to the thread that made it (its forwarder, which
/// connects the upstream meanwhile); from <see cref="Start"/> on it belongs to its loop's thread,
/// and other threads reach it only through <see cref="EpollLoop.Post"/>.
/// </para>
/// <para>
/// Same semantics as the pipe path: a FIN is passed on as a half-close while the other direction
/// keeps flowing; a reset or failure on either side resets both. Once both FINs are passed on the
/// relay waits (<see cref="RelayState.Closing"/>) until each peer has acknowledged everything sent
/// to it, FIN included, and only then closes: a socket closed with bytes still queued becomes an
/// orphan that the kernel may drop silently (see <see cref="SendQueue"/>).
/// </para>
/// <para>
/// A turn reads at most <see cref="MaxReadsPerTurn"/> times in each direction; a relay with more to
/// read then asks its loop for another turn, which comes after every other connection that is
/// ready, so a bulk transfer cannot keep the loop from the connections beside it.
/// </para>
/// <para>
/// A relay asked to move (<see cref="RequestMove"/>: its route gained a toxic, which needs the
/// bytes as a stream) leaves the loop at its next turn on the loop's thread while it is
/// <see cref="RelayState.Relaying"/>: it stops watching both descriptors and hands them, open, with
/// the bytes it holds and its counts to its owner (<see cref="RelayState.Moved"/>). Nothing on the
/// data path checks for it: the request is a job posted to the loop. A relay that has passed a FIN
/// on already finishes here.
/// </para>
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed unsafe class TcpRelay : IEpollHandler, IConnectionLegs
{
    /// <summary>Reads (of up to the loop's buffer size each) per direction in one turn.</summary>
    internal const int MaxReadsPerTurn = 4;

    private const int ClientTag = 0;
    private const int UpstreamTag = 1;

    // EPOLLOUT joins a socket's set the first time a send to it would block, and stays: edge-
    // triggered, it is raised only after a send found the buffer full (the kernel reports write
    // space only then), so it costs nothing while sends go through, where dropping it each time a
    // backlog drains would cost an epoll_ctl.
    private const uint Watched = Libc.EpollIn | Libc.EpollRdHup;

    private readonly EpollLoop _loop;
    private int _state; // a RelayState; written on the owning thread, read anywhere
    private Leg _client;
    private Leg _upstream;
    private Pending _toUpstream;
    private Pending _toClient;
    private IRelayOwner? _owner;
    private object? _ownerState;
    private bool _clientFinFirst;
    private bool _rescheduled;
    private int _abortRequested;
    private int _moveRequested;
    private DescriptorReservation _reservation;
    private volatile ConnectionTap? _tap;

    /// <summary>
    /// A relay for an accepted client, <see cref="RelayState.Connecting"/>: from here on it owns the
    /// client's socket and the descriptors reserved for the connection, and releases them however
    /// it ends — by <see cref="Discard"/> if it never starts.
    /// </summary>
    public TcpRelay(EpollLoop loop, SocketHandle client, DescriptorReservation reservation, IPEndPoint clientEndPoint, IPEndPoint listener)
    {
        _loop = loop;
        _reservation = reservation;
        _client.Socket = client;
        _client.Slot = -1;
        _client.Writable = true; // fresh connected sockets: EPOLLOUT only matters once a send blocks
        _upstream.Slot = -1;
        _upstream.Writable = true;
        Client = clientEndPoint;
        Listener = listener;
    }

    public RelayState Phase => (RelayState)Volatile.Read(ref _state);

    public IPEndPoint Client { get; }

    public IPEndPoint Listener { get; }

    public IPEndPoint Source { get; private set; } = null!;

    public IPEndPoint Upstream { get; private set; } = null!;

    /// <summary>The loop the relay runs on (its upstream connect is watched there too).</summary>
    public EpollLoop Loop => _loop;

    public long BytesToUpstream => Volatile.Read(ref _upstream.Sent);

    public long BytesToClient => Volatile.Read(ref _client.Sent);

    public long BytesReceived => Volatile.Read(ref _client.Received) + Volatile.Read(ref _upstream.Received);

    public long BufferedBytes => (Volatile.Read(ref _client.Received) - BytesToUpstream) + (Volatile.Read(ref _upstream.Received) - BytesToClient);

    public long HeldForUpstream => Volatile.Read(ref _client.Received) - BytesToUpstream;

    public long HeldForClient => Volatile.Read(ref _upstream.Received) - BytesToClient;

    public string State => Phase switch
    {
        RelayState.Connecting => "connecting",
        RelayState.Relaying => "open",
        RelayState.HalfClosed => _clientFinFirst ? "half-closed by client" : "half-closed by upstream",
        RelayState.Closing => "flushing",
        RelayState.Moved => "open", // until its owner has switched the connection to where it went
        _ => "closed",
    };

    public bool IsFlushing => Phase == RelayState.Closing;

    public ConnectionTap? Tap { get => _tap; set => _tap = value; }

    public long KernelQueued() => Phase is RelayState.Closed or RelayState.Connecting or RelayState.Moved ? 0
        : (long)SendQueue.Unacknowledged(_client.Socket!) + SendQueue.Unacknowledged(_upstream.Socket!);

    public LegsInspection Inspect() => Phase is RelayState.Closed or RelayState.Connecting or RelayState.Moved
        ? default
        : new LegsInspection(HeldForUpstream, SendQueue.Inspect(_upstream.Socket!), HeldForClient, SendQueue.Inspect(_client.Socket!));

    /// <summary>Connecting: takes the connected upstream socket, owned by the relay from here on.</summary>
    public void Connected(SocketHandle upstream, IPEndPoint source, IPEndPoint upstreamEndPoint)
    {
        if (Phase != RelayState.Connecting || _upstream.Socket is not null)
        {
            throw new InvalidOperationException("the upstream is connected once, before Start");
        }

        _upstream.Socket = upstream;
        Source = source;
        Upstream = upstreamEndPoint;
    }

    /// <summary>Connecting → Closed: resets what the relay holds; the relay is never started (its connect or handoff failed).</summary>
    public void Discard()
    {
        if (Phase != RelayState.Connecting)
        {
            return;
        }

        MoveTo(RelayState.Closed);
        _client.Socket!.CloseAbortive();
        _upstream.Socket?.CloseAbortive();
        ReturnReservation();
    }

    /// <summary>
    /// Connecting → Relaying: from here on the relay belongs to its loop, which registers its
    /// sockets and runs it on its own; <paramref name="owner"/> hears exactly once (with
    /// <paramref name="state"/>), on the thread pool, after both descriptors are closed. Does not
    /// throw; a relay that cannot start ends like any other (<see cref="CloseReason.InternalError"/>).
    /// </summary>
    public void Start(IRelayOwner owner, object? state)
    {
        if (Phase != RelayState.Connecting || _upstream.Socket is null)
        {
            throw new InvalidOperationException("Start follows Connected, once");
        }

        _owner = owner;
        _ownerState = state;
        MoveTo(RelayState.Relaying);
        _loop.Post(static s => ((TcpRelay)s!).Begin(), this);
    }

    /// <summary>On the loop: registers both sockets, unless the relay was aborted and closed, or moved, first.</summary>
    private void Begin()
    {
        if (Phase != RelayState.Relaying)
        {
            return;
        }

        if (Volatile.Read(ref _moveRequested) != 0 && Volatile.Read(ref _abortRequested) == 0)
        {
            Move(); // asked while connecting: it never joins the loop's set
            return;
        }

        try
        {
            _client.Slot = _loop.Register(_client.Socket!, Watched, this, ClientTag);
            _upstream.Slot = _loop.Register(_upstream.Socket!, Watched, this, UpstreamTag);
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or ObjectDisposedException)
        {
            Fail(CloseReason.InternalError);
            return;
        }

        // Bytes the client sent already are reported by the registration: epoll reports a socket
        // that is readable when it is added.
        if (Volatile.Read(ref _abortRequested) != 0)
        {
            Fail(_loop.IsFailed ? CloseReason.InternalError : CloseReason.ProxyAborted);
        }
    }

    /// <summary>Resets both sides (any thread); a relay still connecting is reset once it starts.</summary>
    public void Abort()
    {
        Interlocked.Exchange(ref _abortRequested, 1);
        _loop.Post(static state =>
        {
            var relay = (TcpRelay)state!;
            if (relay.Phase is not (RelayState.Connecting or RelayState.Closed or RelayState.Moved))
            {
                relay.Fail(relay._loop.IsFailed ? CloseReason.InternalError : CloseReason.ProxyAborted);
            }
        }, this);
    }

    /// <summary>
    /// Asks the relay (any thread, any number of times) to leave the loop and hand its connection to
    /// its owner (<see cref="IRelayOwner.OnRelayMoved"/>). Done on the loop's thread at its next
    /// turn while the relay is <see cref="RelayState.Relaying"/>; a relay still connecting does it
    /// once started; one that has passed a FIN on, is closed or is being aborted stays and ends
    /// here. Costs the data path nothing: it is a job posted to the loop.
    /// </summary>
    public void RequestMove()
    {
        if (Interlocked.Exchange(ref _moveRequested, 1) != 0)
        {
            return;
        }

        _loop.Post(static state => ((TcpRelay)state!).Move(), this);
    }

    /// <summary>
    /// Relaying → Moved, on the loop: both descriptors out of the set and still open, the held bytes
    /// copied out, and everything handed to the owner on the thread pool.
    /// </summary>
    private void Move()
    {
        if (Phase != RelayState.Relaying || Volatile.Read(ref _abortRequested) != 0 || _owner is not { } owner)
        {
            return;
        }

        if (_client.Slot >= 0)
        {
            _loop.Unregister(_client.Slot, keepOpen: true);
            _client.Slot = -1;
        }

        if (_upstream.Slot >= 0)
        {
            _loop.Unregister(_upstream.Slot, keepOpen: true);
            _upstream.Slot = -1;
        }

        var handover = new RelayHandover(_client.Socket!, _upstream.Socket!, _reservation, Take(ref _toUpstream), Take(ref _toClient),
            _client.Received, _client.Sent, _upstream.Received, _upstream.Sent);
        // The handles stay referenced: a thread that read the phase just before may still ask the
        // kernel about them (SendQueue), which is safe on a handle its new owner has taken over.
        _reservation = default;
        MoveTo(RelayState.Moved);
        var state = _ownerState;
        ThreadPool.UnsafeQueueUserWorkItem(_ => owner.OnRelayMoved(this, state, handover), null);
    }

    /// <summary>What <paramref name="pending"/> holds, as an array of its own; its buffer is given back.</summary>
    private byte[] Take(ref Pending pending)
    {
        var held = pending.Count > 0 ? pending.Buffer!.AsSpan(pending.Offset, pending.Count).ToArray() : [];
        Release(ref pending);
        return held;
    }

    /// <summary>The loop could not go on with this relay (see <see cref="IEpollHandler.OnLoopFailure"/>): both sides are reset.</summary>
    public void OnLoopFailure(Exception error) => Fail(CloseReason.InternalError);

    // The loop reports a peer's reset itself (EPOLLERR), whether or not that side is being read.
    public CloseReason? ResetWhilePaused() => null;

    public void OnEvents(uint events, int tag)
    {
        var phase = Phase;
        if (phase is RelayState.Closed or RelayState.Connecting or RelayState.Moved)
        {
            return;
        }

        ref var leg = ref tag == ClientTag ? ref _client : ref _upstream;
        if (phase == RelayState.Closing)
        {
            // Nothing is read or sent any more; an event here is a peer acknowledging, or leaving.
            // A peer that resets with bytes of ours still unacknowledged did not get them all; one
            // that resets our FIN alone (it closed its socket after reading everything) did.
            if ((events & Libc.EpollErr) != 0 && SendQueue.Unacknowledged(leg.Socket!) > 1)
            {
                Fail(tag == ClientTag ? CloseReason.ClientReset : CloseReason.UpstreamReset);
            }
            else
            {
                CloseIfFlushed();
            }

            return;
        }

        if ((events & Libc.EpollErr) != 0 && RawSocket.PendingError(leg.Socket!) != 0)
        {
            Fail(tag == ClientTag ? CloseReason.ClientReset : CloseReason.UpstreamReset);
            return;
        }

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
            else if (_client.ReadEnded && _upstream.ReadEnded)
            {
                MoveTo(RelayState.Closing);
                CloseIfFlushed();
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

            var buffer = _loop.Buffer;
            nint received;
            fixed (byte* p = buffer)
            {
                received = Libc.Recv(from.Socket!.Fd, p, (nuint)_loop.BufferSize, Libc.MsgDontWait);
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

                // A capture hears of these bytes with their first send: as one report for both legs
                // when that send takes them all (one copy instead of two), as they come otherwise.
                pending.Unreported = _tap is not null;
                pending.ReceivedAt = from.Received - received;
                if (to.Writable && !Send(ref to, ref pending, upward))
                {
                    pending = default;
                    return false;
                }

                ReportReceived(ref pending, upward);

                if (pending.Count > 0)
                {
                    // The other side is full: this connection keeps the buffer until it drains.
                    _loop.ReplaceBuffer();
                    return true;
                }

                pending.Buffer = null;
                continue;
            }

            if (received == 0)
            {
                // Everything read from this side has been sent on (reads wait for a drained
                // backlog): pass the FIN on after it.
                from.ReadEnded = true;
                if (!to.ReadEnded)
                {
                    _clientFinFirst = upward;
                    MoveTo(RelayState.HalfClosed);
                }

                Libc.Shutdown(to.Socket!.Fd, Libc.ShutWr);
                if (_tap is { } tap)
                {
                    tap.For(upward ? CaptureLeg.Client : CaptureLeg.Upstream).Received(default, from.Received);
                    tap.For(upward ? CaptureLeg.Upstream : CaptureLeg.Client).SentFin(to.Sent);
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
                sent = Libc.Send(to.Socket!.Fd, p + pending.Offset, (nuint)pending.Count, Libc.MsgDontWait | Libc.MsgNoSignal);
            }

            if (sent >= 0)
            {
                Volatile.Write(ref to.Sent, to.Sent + sent);
                if (_tap is { } tap)
                {
                    ReportSent(tap, ref pending, (int)sent, to.Sent - sent, upward);
                }
                pending.Offset += (int)sent;
                pending.Count -= (int)sent;
                continue;
            }

            int errno = Libc.Errno;
            if (errno == Libc.EAgain)
            {
                ReportReceived(ref pending, upward);
                to.Writable = false;
                if (to.WantsOut || _loop.Modify(to.Slot, Watched | Libc.EpollOut))
                {
                    to.WantsOut = true;
                    return true;
                }

                Fail(CloseReason.InternalError);
                return false;
            }

            if (errno != Libc.EIntr)
            {
                ReportReceived(ref pending, upward);
                Fail(upward ? CloseReason.UpstreamReset : CloseReason.ClientReset);
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// A send of <paramref name="sent"/> bytes from <paramref name="pending"/> to a capture: with the
    /// bytes' receipt, if that is not reported yet, as one report when the send took them all.
    /// </summary>
    private static void ReportSent(ConnectionTap tap, ref Pending pending, int sent, long sentAt, bool upward)
    {
        var (fromLeg, toLeg) = upward ? (CaptureLeg.Client, CaptureLeg.Upstream) : (CaptureLeg.Upstream, CaptureLeg.Client);
        if (pending.Unreported)
        {
            pending.Unreported = false;
            if (sent == pending.Count)
            {
                tap.For(fromLeg).Relayed(pending.Buffer.AsSpan(0, pending.Count), pending.ReceivedAt, sentAt, sent);
                return;
            }

            tap.For(fromLeg).Received(pending.Buffer.AsSpan(0, pending.Count), pending.ReceivedAt);
        }

        tap.For(toLeg).Sent(pending.Buffer.AsSpan(pending.Offset, sent), sentAt);
    }

    /// <summary>Bytes received and not (all) sent at once: their receipt goes to a capture now, before anything after it.</summary>
    private void ReportReceived(ref Pending pending, bool upward)
    {
        if (pending.Unreported)
        {
            pending.Unreported = false;
            _tap?.For(upward ? CaptureLeg.Client : CaptureLeg.Upstream).Received(pending.Buffer.AsSpan(pending.Offset, pending.Count), pending.ReceivedAt);
        }
    }

    /// <summary>
    /// Closing: closes both sockets once each peer has acknowledged everything sent to it. Each
    /// acknowledgement of a FIN changes the socket's TCP state, which wakes the loop, so this is
    /// asked again until it is true; a peer that never takes the rest is reset by the flush timeout.
    /// </summary>
    private void CloseIfFlushed()
    {
        if (SendQueue.Delivered(_client.Socket!) && SendQueue.Delivered(_upstream.Socket!))
        {
            Close(_clientFinFirst ? CloseReason.ClientClosed : CloseReason.UpstreamClosed, abortive: false);
        }
    }

    private void Fail(CloseReason reason)
    {
        if (Phase == RelayState.Moved)
        {
            return; // its sockets are its owner's now
        }

        if (_tap is { } tap && Phase != RelayState.Closed)
        {
            // The side that reset, or the proxy on both.
            tap.ClientLeg.Reset(fromPeer: reason == CloseReason.ClientReset);
            tap.UpstreamLeg.Reset(fromPeer: reason == CloseReason.UpstreamReset);
        }

        Close(reason, abortive: true);
    }

    /// <summary>
    /// → Closed, once: both descriptors closed, the reservation and any kept buffer given back, and
    /// the owner told on the thread pool, even when a close throws.
    /// </summary>
    private void Close(CloseReason reason, bool abortive)
    {
        if (Phase is RelayState.Closed or RelayState.Moved)
        {
            return;
        }

        MoveTo(RelayState.Closed);
        try
        {
            Close(ref _client, abortive);
            Close(ref _upstream, abortive);
        }
        finally
        {
            ReturnReservation();
            Release(ref _toUpstream);
            Release(ref _toClient);
            if (_owner is { } owner)
            {
                var state = _ownerState;
                ThreadPool.UnsafeQueueUserWorkItem(_ => owner.OnRelayClosed(this, state, reason), null);
            }
        }
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
            leg.Socket?.CloseAbortive();
        }
        else
        {
            leg.Socket?.Dispose();
        }
    }

    private void ReturnReservation()
    {
        _reservation.Return();
        _reservation = default;
    }

    private void Release(ref Pending pending)
    {
        // The loop's buffer is only borrowed within one turn; a kept one is the connection's.
        if (pending.Buffer is { } buffer && !ReferenceEquals(buffer, _loop.Buffer))
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        pending = default;
    }

    /// <summary>Takes one arrow of <see cref="RelayState"/>; any other is a bug, which debug builds throw at.</summary>
    private void MoveTo(RelayState next)
    {
        var current = Phase;
        if (!RelayStates.CanMove(current, next))
        {
#if DEBUG
            throw new InvalidOperationException($"relay {Client}: {current} → {next} is not a transition");
#else
            return;
#endif
        }

        Volatile.Write(ref _state, (int)next);
    }

    private struct Leg
    {
        public SocketHandle? Socket;
        public int Slot;
        public bool WantsOut;
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

        /// <summary>The buffer's bytes were just received and a capture has not heard of them yet (only until their first send).</summary>
        public bool Unreported;

        /// <summary>The stream offset of the buffer's first byte on the leg it was received from.</summary>
        public long ReceivedAt;
    }
}
