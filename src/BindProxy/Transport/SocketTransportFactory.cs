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
/// <see cref="InboundConnection"/>s whose sockets support half-close and large receives.
/// </summary>
internal sealed partial class SocketTransportFactory(
    TransportOptions options,
    ListenerRegistry registry,
    RelayEngine relays,
    ILogger<SocketTransportFactory> logger)
    : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
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
        ProxyListener listener;
        try
        {
            listener = RelayEngine.IsSupported
                ? new EpollListener(socket, bound, relays.NextLoop(), options, registry, logger)
                : new SocketListener(socket, bound, options, registry, logger);
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

    private abstract class ProxyListener(Socket socket, RouteEndPoint endpoint, TransportOptions options, ListenerRegistry registry, ILogger logger)
        : IConnectionListener
    {
        protected Socket ListenSocket => socket;

        protected TransportOptions Options => options;

        // Bound to one address (not a wildcard): every accepted socket's local end is this one.
        protected IPEndPoint? SpecificAddress { get; } =
            endpoint.Address.Address.Equals(IPAddress.Any) || endpoint.Address.Address.Equals(IPAddress.IPv6Any) ? null : endpoint.Address;

        public EndPoint EndPoint => endpoint;

        protected RouteEndPoint Route => endpoint;

        public abstract ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default);

        /// <summary>After a failure that may pass (out of descriptors or buffers): keep the listener, wait a moment.</summary>
        protected async ValueTask BackOffAsync(SocketError error, string message, CancellationToken cancellationToken)
        {
            Log.AcceptFailed(logger, endpoint.Route.Name, endpoint.Address, error, message);
            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }

        public virtual ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            socket.Dispose();
            registry.Remove(endpoint);
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync() => UnbindAsync();
    }

    /// <summary>Accepts through <see cref="Socket.AcceptAsync(CancellationToken)"/> (where the relay engine is not available).</summary>
    private sealed class SocketListener(Socket socket, RouteEndPoint endpoint, TransportOptions options, ListenerRegistry registry, ILogger logger)
        : ProxyListener(socket, endpoint, options, registry, logger)
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

                accepted.NoDelay = true;
                return new InboundConnection(accepted, Route.Route, SpecificAddress, Options);
            }
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

        private readonly EpollLoop _loop;
        private readonly int _fd;
        private readonly int _slot;
        private ManualResetValueTaskSourceCore<bool> _ready; // continuations run on the loop's thread
        private int _state;
        private int _burst;
        private volatile bool _stopped;

        public EpollListener(Socket socket, RouteEndPoint endpoint, EpollLoop loop, TransportOptions options, ListenerRegistry registry, ILogger logger)
            : base(socket, endpoint, options, registry, logger)
        {
            _loop = loop;
            _fd = (int)socket.SafeHandle.DangerousGetHandle();
            RawSocket.SetNonBlocking(_fd);
            _slot = loop.Register(_fd, Libc.EpollIn, this, 0);
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

                int fd = Accept(out var client, out int errno);
                if (fd >= 0)
                {
                    _burst++;
                    try
                    {
                        return new InboundConnection(fd, client!, Route.Route, SpecificAddress, Options);
                    }
                    catch (SocketException)
                    {
                        RawSocket.CloseAbortive(fd); // gone before getsockname
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
                else if (errno is not (Libc.EIntr or Libc.EConnAborted))
                {
                    var error = RawSocket.Error(errno);
                    await BackOffAsync(error.SocketErrorCode, error.Message, cancellationToken).ConfigureAwait(false);
                }
            }

            return null;
        }

        // The listening socket's number stays ours while accept4 runs, even if Unbind closes it meanwhile.
        private int Accept(out IPEndPoint? client, out int errno)
        {
            bool added = false;
            try
            {
                ListenSocket.SafeHandle.DangerousAddRef(ref added);
                return RawSocket.Accept(_fd, out client, out errno);
            }
            catch (ObjectDisposedException)
            {
                client = null;
                errno = Libc.EBadF;
                return -1;
            }
            finally
            {
                if (added)
                {
                    ListenSocket.SafeHandle.DangerousRelease();
                }
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
