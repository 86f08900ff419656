using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks.Sources;
using BindProxy.Forwarding;
using BindProxy.Transport.Linux;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace BindProxy.Transport;

/// <summary>
/// Kestrel transport for proxy listeners: binds <see cref="RouteEndPoint"/>s only, and hands out
/// <see cref="InboundConnection"/>s whose sockets support half-close and large receives. Every
/// listener and accepted connection takes its descriptors from the <see cref="DescriptorBudget"/>;
/// a client that does not fit is reset at once.
/// </summary>
internal sealed partial class SocketTransportFactory(
    TransportOptions options,
    ListenerRegistry registry,
    RelayEngine relays,
    DescriptorBudget budget,
    ILogger<SocketTransportFactory> logger)
    : IConnectionListenerFactory, IConnectionListenerFactorySelector, IDisposable
{
    private readonly SpareDescriptor? _spare = RelayEngine.IsSupported ? new SpareDescriptor() : null;

    public bool CanBind(EndPoint endpoint) => endpoint is RouteEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (endpoint is not RouteEndPoint routeEndPoint)
        {
            throw new NotSupportedException($"{endpoint.GetType().Name} is not a proxy route endpoint.");
        }

        var socket = new Socket(routeEndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (routeEndPoint.AddressFamily == AddressFamily.InterNetworkV6)
            {
                socket.DualMode = false;
            }

            socket.Bind(routeEndPoint.Address);
            socket.Listen(options.ListenBacklog);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new IOException($"route '{routeEndPoint.Route.Name}': cannot listen on {routeEndPoint.Address}: {e.Message}", e);
        }

        var bound = new RouteEndPoint(routeEndPoint.Route, (IPEndPoint)socket.LocalEndPoint!);
        var context = new ListenerContext(bound, options, registry, budget, logger);
        ProxyListener listener;
        try
        {
            listener = RelayEngine.IsSupported
                ? new EpollListener(socket, context, relays, _spare!)
                : new SocketListener(socket, context);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        registry.Add(bound, listener);
        Log.Listening(logger, bound.Route.Name, bound.Address);
        return new ValueTask<IConnectionListener>(listener);
    }

    public void Dispose() => _spare?.Dispose();

    /// <summary>What every listener of this factory shares.</summary>
    private sealed record ListenerContext(RouteEndPoint Endpoint, TransportOptions Options, ListenerRegistry Registry, DescriptorBudget Budget, ILogger Logger);

    private abstract class ProxyListener : IConnectionListener
    {
        private readonly ListenerContext _context;
        private int _unbound;

        protected ProxyListener(Socket socket, ListenerContext context)
        {
            ListenSocket = socket;
            _context = context;

            // The listening socket's own descriptor, for as long as it listens.
            context.Budget.Take(1);
            var address = context.Endpoint.Address;
            SpecificAddress = address.Address.Equals(IPAddress.Any) || address.Address.Equals(IPAddress.IPv6Any) ? null : address;
        }

        protected Socket ListenSocket { get; }

        protected TransportOptions Options => _context.Options;

        protected DescriptorBudget Budget => _context.Budget;

        // Bound to one address (not a wildcard): every accepted socket's local end is this one.
        protected IPEndPoint? SpecificAddress { get; }

        public EndPoint EndPoint => _context.Endpoint;

        protected RouteEndPoint Route => _context.Endpoint;

        public abstract ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default);

        /// <summary>
        /// Takes the descriptors a new connection needs; when they are not there, the refusal is
        /// counted and the caller resets the client and goes on to the next one.
        /// </summary>
        protected bool TryReserve(IPEndPoint? client, out DescriptorReservation reservation)
        {
            if (Budget.TryTake(DescriptorBudget.PerConnection))
            {
                reservation = new DescriptorReservation(Budget, DescriptorBudget.PerConnection);
                return true;
            }

            Budget.Refuse(Route.Route.Name, client);
            reservation = default;
            return false;
        }

        /// <summary>After a failure that may pass (out of buffers or memory): keep the listener, wait a moment.</summary>
        protected async ValueTask BackOffAsync(SocketError error, string message, CancellationToken cancellationToken)
        {
            Log.AcceptFailed(_context.Logger, Route.Route.Name, Route.Address, error, message);
            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }

        public virtual ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            ListenSocket.Dispose();
            _context.Registry.Remove(Route);
            if (Interlocked.Exchange(ref _unbound, 1) == 0)
            {
                Budget.Return(1);
            }

            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync() => UnbindAsync();
    }

    /// <summary>Accepts through <see cref="Socket.AcceptAsync(CancellationToken)"/> (where the relay engine is not available).</summary>
    private sealed class SocketListener(Socket socket, ListenerContext context) : ProxyListener(socket, context)
    {
        public override async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            while (true)
            {
                Socket accepted;
                try
                {
                    accepted = await ListenSocket.AcceptAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (ObjectDisposedException)
                {
                    return null;
                }
                catch (OperationCanceledException)
                {
                    return null;
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.OperationAborted or SocketError.Interrupted)
                {
                    return null;
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
                {
                    continue; // the client gave up while queued
                }
                catch (SocketException e)
                {
                    await BackOffAsync(e.SocketErrorCode, e.Message, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                if (!TryReserve(accepted.RemoteEndPoint as IPEndPoint, out var reservation))
                {
                    Reset(accepted);
                    continue;
                }

                try
                {
                    accepted.NoDelay = true;
                    return new InboundConnection(accepted, Route.Route, SpecificAddress, Options, reservation);
                }
                catch (SocketException)
                {
                    Reset(accepted); // gone before its addresses could be read
                    reservation.Return();
                }
            }
        }

        private static void Reset(Socket socket)
        {
            try
            {
                socket.LingerState = new LingerOption(true, 0);
            }
            catch (SocketException)
            {
            }

            socket.Dispose();
        }
    }

    /// <summary>
    /// Accepts with accept4 on the listening descriptor, which a relay loop watches: when a
    /// connection arrives, Kestrel's accept loop goes on on that loop's thread (it only queues the
    /// connection to the thread pool), so no thread wakes just to accept. The accepted socket
    /// stays a bare descriptor for the relay engine.
    /// </summary>
    private sealed class EpollListener : ProxyListener, IEpollHandler, IValueTaskSource<bool>
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
                        return new InboundConnection(accepted, client!, Route.Route, SpecificAddress, Options, reservation);
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

    private static partial class Log
    {
        [LoggerMessage(100, LogLevel.Information, "Route {Route} listening on {Endpoint}")]
        public static partial void Listening(ILogger logger, string route, IPEndPoint endpoint);

        [LoggerMessage(101, LogLevel.Warning, "Route {Route} on {Endpoint}: accept failed ({Error}: {Message}); retrying")]
        public static partial void AcceptFailed(ILogger logger, string route, IPEndPoint endpoint, SocketError error, string message);
    }
}
