using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Threading.Tasks.Sources;
using Microsoft.AspNetCore.Connections;

namespace BindProxy.Transport.Linux;

/// <summary>
/// Accepts with accept4 on the listening descriptor, which a relay loop watches: when a
/// connection arrives, Kestrel's accept loop goes on on that loop's thread (it only queues the
/// connection to the thread pool), so no thread wakes just to accept. The accepted socket
/// stays a bare descriptor for the relay engine.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed class EpollListener : ProxyListener, IEpollHandler, IValueTaskSource<bool>
{
    // Accepts in a row on the loop's thread before it gets back to its relays.
    private const int MaxBurst = 32;
    private const int Idle = 0;
    private const int Signalled = 1;
    private const int Waiting = 2;

    private readonly RelayEngine _relays;
    private readonly SpareDescriptor _spare;
    private volatile EpollLoop _loop;
    private volatile int _slot;
    private ManualResetValueTaskSourceCore<bool> _ready; // continuations run on the loop's thread
    private int _state;
    private int _burst;
    private volatile bool _stopped;

    public EpollListener(Socket socket, ListenerContext context, RelayEngine relays, SpareDescriptor spare)
        : base(socket, context)
    {
        _relays = relays;
        _spare = spare;
        RawSocket.SetNonBlocking(socket.SafeHandle);
        _loop = relays.NextLoop();
        _slot = _loop.Register(socket.SafeHandle, Libc.EpollIn, this, 0);
    }

    public override async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        while (!_stopped && !cancellationToken.IsCancellationRequested)
        {
            Volatile.Write(ref _state, Idle);
            if (_burst == MaxBurst)
            {
                // Out of burst: wait for a posted wake-up, which the loop runs after the events it already has.
                _burst = 0;
                _loop.Post(static s => ((EpollListener)s!).Wake(), this);
                if (!await WaitAsync().ConfigureAwait(false))
                {
                    return null;
                }

                continue;
            }

            var accepted = Accept(out var client, out int errno);
            if (accepted is not null)
            {
                _burst++;
                if (!TryReserve(client, out var reservation))
                {
                    accepted.CloseAbortive();
                    continue;
                }

                try
                {
                    return new DescriptorInbound(accepted, client!, Route.Route, SpecificAddress, Options, reservation);
                }
                catch (SocketException)
                {
                    accepted.CloseAbortive(); // gone before getsockname
                    reservation.Return();
                    continue;
                }
            }

            if (errno == Libc.EAgain)
            {
                _burst = 0;
                if (!await WaitAsync().ConfigureAwait(false))
                {
                    return null;
                }
            }
            else if (errno is Libc.EBadF or Libc.EInval)
            {
                return null; // the listening socket is closed
            }
            else if (RawSocket.IsOutOfDescriptors(errno))
            {
                // The budget had room but the table is full (something else holds descriptors):
                // refuse the waiting client with the spare descriptor rather than leave it queued.
                _burst++;
                if (_spare.TryRefuseOne(ListenSocket.SafeHandle, out var refused))
                {
                    Budget.Refuse(Route.Route.Name, refused, system: true);
                }
                else
                {
                    var error = RawSocket.Error(errno);
                    await BackOffAsync(error.SocketErrorCode, error.Message, cancellationToken).ConfigureAwait(false);
                }
            }
            else if (errno is not (Libc.EIntr or Libc.EConnAborted))
            {
                var error = RawSocket.Error(errno);
                await BackOffAsync(error.SocketErrorCode, error.Message, cancellationToken).ConfigureAwait(false);
            }
        }

        return null;
    }

    // The listening socket stays open while accept4 runs, even if Unbind closes it meanwhile.
    private SocketHandle? Accept(out IPEndPoint? client, out int errno)
    {
        try
        {
            return RawSocket.Accept(ListenSocket.SafeHandle, out client, out errno);
        }
        catch (ObjectDisposedException)
        {
            client = null;
            errno = Libc.EBadF;
            return null;
        }
    }

    /// <summary>Completes when the listening socket may have a connection (true) or the listener stopped (false).</summary>
    private ValueTask<bool> WaitAsync()
    {
        _ready.Reset();
        if (Interlocked.CompareExchange(ref _state, Waiting, Idle) != Idle)
        {
            return new ValueTask<bool>(!_stopped); // an edge came after accept said "none"
        }

        return new ValueTask<bool>(this, _ready.Version);
    }

    public void OnEvents(uint events, int tag) => Wake();

    /// <summary>The loop failed: the listener goes on on another one (none left means the process is ending).</summary>
    public void OnLoopFailure(Exception error)
    {
        if (_stopped)
        {
            return;
        }

        try
        {
            var loop = _relays.NextLoop();
            _slot = loop.Register(ListenSocket.SafeHandle, Libc.EpollIn, this, 0);
            _loop = loop;
        }
        catch (Exception e) when (e is ObjectDisposedException or InvalidOperationException or SocketException)
        {
        }

        Wake(); // a waiting accept looks again, on the new loop's thread from then on
    }

    private void Wake()
    {
        if (Interlocked.Exchange(ref _state, Signalled) == Waiting)
        {
            _ready.SetResult(!_stopped);
        }
    }

    public override async ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        if (!_stopped)
        {
            // Taken out of the loop's set on the loop's thread, so no event for it is running
            // when the socket closes; a waiting accept returns null.
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _loop.Post(static s =>
            {
                var (listener, done) = ((EpollListener, TaskCompletionSource))s!;
                listener.Stop();
                done.SetResult();
            }, (this, done));
            try
            {
                await done.Task.WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                Stop(); // the loop has stopped
            }
        }

        await base.UnbindAsync(cancellationToken).ConfigureAwait(false);
    }

    private void Stop()
    {
        if (_stopped)
        {
            return;
        }

        _stopped = true;
        _loop.Unregister(_slot, keepOpen: true);
        Wake();
    }

    bool IValueTaskSource<bool>.GetResult(short token) => _ready.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _ready.GetStatus(token);

    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _ready.OnCompleted(continuation, state, token, flags);
}
