using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using BindProxy.Addressing;
using BindProxy.Configuration;
using Microsoft.Extensions.Logging;

namespace BindProxy.Outbound;

/// <summary>
/// Opens the upstream side of a proxied connection: a new socket bound to one of the route's
/// source addresses, connected within the route's timeout, failing over to the next source
/// address when one is out of ports. It never connects to one of the proxy's own listeners.
/// </summary>
/// <param name="own">The proxy's listeners; none when absent (a connector used on its own).</param>
internal sealed partial class UpstreamConnector(ILogger<UpstreamConnector> logger, OwnListeners? own = null)
{
    private readonly OwnListeners _own = own ?? new OwnListeners();

    /// <summary>Source addresses one connection tries before giving up (large pools are not scanned whole).</summary>
    public const int MaxSourceAttempts = 16;

    // Linux: <netinet/in.h> IP_BIND_ADDRESS_NO_PORT at level IPPROTO_IP. With it, bind(addr, 0)
    // defers the port choice to connect(), which then picks per 4-tuple; without it every
    // destination shares the one pool of ports of the source address.
    private const int IpProtoIp = 0;
    private const int IpBindAddressNoPort = 24;

    private long _sequence = -1;

    public ValueTask<ConnectResult<Socket>> ConnectAsync(RouteModel route, CancellationToken cancellationToken) =>
        ConnectAsync(route, null, cancellationToken);

    /// <summary>Connects a .NET <see cref="Socket"/> (pipe path, Http routes).</summary>
    /// <param name="assigned">
    /// The client's own source address (per-client assignment): only that one is tried, since
    /// falling over to another would mix this client's traffic with another's.
    /// </param>
    public ValueTask<ConnectResult<Socket>> ConnectAsync(RouteModel route, IPAddress? assigned, CancellationToken cancellationToken) =>
        ConnectAsync(route, null, assigned, s_connectSocket, cancellationToken);

    /// <summary>The same towards <paramref name="destination"/> instead of the route's upstream (an intercepted connection's original destination).</summary>
    public ValueTask<ConnectResult<Socket>> ConnectAsync(RouteModel route, IPEndPoint? destination, IPAddress? assigned, CancellationToken cancellationToken) =>
        ConnectAsync(route, destination, assigned, s_connectSocket, cancellationToken);

    private static readonly Func<IPAddress, IPEndPoint, ConnectDeadline, ValueTask<Socket>> s_connectSocket = ConnectSocketAsync;

    /// <summary>
    /// Tries the route's source addresses and destinations in turn with <paramref name="attempt"/>,
    /// which makes one connection from a source to a destination or throws (a
    /// <see cref="SocketException"/>, or <see cref="OperationCanceledException"/> when the
    /// deadline's token fires) after releasing what it made.
    /// </summary>
    public ValueTask<ConnectResult<T>> ConnectAsync<T>(RouteModel route, IPAddress? assigned,
        Func<IPAddress, IPEndPoint, ConnectDeadline, ValueTask<T>> attempt, CancellationToken cancellationToken)
        where T : class =>
        ConnectAsync(route, null, assigned, attempt, cancellationToken);

    /// <param name="route">The route whose sources (and, without a target, upstream) are used.</param>
    /// <param name="target">
    /// Where to connect instead of the route's upstream: an intercepted connection's original
    /// destination. Source failover is the same; a destination of the other address family than
    /// the sources fails as unresolved.
    /// </param>
    /// <param name="assigned">The client's assigned source, or null for the route's pool.</param>
    /// <param name="attempt">Makes one connection from a source to a destination.</param>
    /// <param name="cancellationToken">Cancels the whole connect.</param>
    public ValueTask<ConnectResult<T>> ConnectAsync<T>(RouteModel route, IPEndPoint? target, IPAddress? assigned,
        Func<IPAddress, IPEndPoint, ConnectDeadline, ValueTask<T>> attempt, CancellationToken cancellationToken)
        where T : class =>
        ConnectAsync(route, target, assigned, static (source, destination, deadline, attempt) => attempt(source, destination, deadline), attempt, cancellationToken);

    /// <summary>
    /// As <see cref="ConnectAsync{T}(RouteModel, IPEndPoint?, IPAddress?, Func{IPAddress, IPEndPoint, ConnectDeadline, ValueTask{T}}, CancellationToken)"/>,
    /// with <paramref name="state"/> passed to every attempt (so that a static delegate needs no
    /// closure per connection). An attempt that calls <see cref="ConnectDeadline.Abandon"/> before
    /// it throws <see cref="OperationCanceledException"/> ends the connect as
    /// <see cref="ConnectError.Cancelled"/>: the client left.
    /// </summary>
    public async ValueTask<ConnectResult<T>> ConnectAsync<T, TState>(RouteModel route, IPEndPoint? target, IPAddress? assigned,
        Func<IPAddress, IPEndPoint, ConnectDeadline, TState, ValueTask<T>> attempt, TState state, CancellationToken cancellationToken)
        where T : class
    {
        long started = Stopwatch.GetTimestamp();
        var pool = assigned is null ? route.Sources : null;
        long first = pool?.NextIndex() ?? 0;
        long sequence = Interlocked.Increment(ref _sequence);
        int attempts = pool is null ? 1 : (int)Math.Min(pool.Addresses.Count, MaxSourceAttempts);
        List<string>? exhausted = null;
        ConnectError lastError = ConnectError.SourcesExhausted;
        string lastDetail = "";
        IPEndPoint? lastUpstream = null;
        int attemptNumber = 0;

        using var deadline = new ConnectDeadline(route.ConnectTimeout, cancellationToken);

        for (int tried = 0; tried < attempts; tried++)
        {
            var source = pool is null ? assigned! : pool.Addresses[(first + tried) % pool.Addresses.Count];
            IPEndPoint[] destinations;
            if (target is not null)
            {
                if (target.AddressFamily != source.AddressFamily)
                {
                    return Fail(ConnectError.Unresolved, $"original destination {target} is {ConfigValidator.FamilyName(target.AddressFamily)}, source {source} is not", target, started);
                }

                destinations = [target];
            }
            else
            {
                try
                {
                    // Address literals resolve at once: only a name lookup arms the deadline.
                    var token = route.Upstream.Endpoints is null ? deadline.Token : CancellationToken.None;
                    long resolving = Stopwatch.GetTimestamp();
                    destinations = await route.Upstream.ResolveAsync(source.AddressFamily, sequence, token).ConfigureAwait(false);
                    if (route.Upstream.Endpoints is null && logger.IsEnabled(LogLevel.Debug))
                    {
                        Log.Resolved(logger, route.Name, sequence, route.Upstream.Host ?? route.Upstream.Text, string.Join(", ", (IEnumerable<IPEndPoint>)destinations), Milliseconds(resolving));
                    }
                }
                catch (OperationCanceledException)
                {
                    return Fail(cancellationToken.IsCancellationRequested ? ConnectError.Cancelled : ConnectError.Timeout,
                        $"resolving {route.Upstream.Host} took longer than {route.ConnectTimeout.TotalSeconds:0.###} s", null, started);
                }
                catch (SocketException e)
                {
                    return Fail(ConnectError.Unresolved, $"cannot resolve {route.Upstream.Host}: {e.Message}", null, started);
                }
            }

            if (destinations.Length == 0)
            {
                return Fail(ConnectError.Unresolved, $"{route.Upstream} has no {ConfigValidator.FamilyName(source.AddressFamily)} address to match source {source}", null, started);
            }

            bool sourceExhausted = false;
            foreach (var destination in destinations)
            {
                lastUpstream = destination;
                int number = ++attemptNumber;
                if (_own.Reaches(destination, out var owner))
                {
                    // A loop found at run time (a name that now resolves here, a broker advertising
                    // the proxy's own port): this client is closed instead of being connected back
                    // in, which would repeat for every connection the loop makes.
                    lastError = ConnectError.Failed;
                    lastDetail = $"{destination} is this proxy's own listener ({owner}); connecting would loop back into the proxy";
                    Log.AttemptFailed(logger, route.Name, sequence, number, source, destination, 0, lastDetail);
                    continue;
                }

                long attemptStarted = Stopwatch.GetTimestamp();
                try
                {
                    var connected = await attempt(source, destination, deadline, state).ConfigureAwait(false);
                    Log.AttemptConnected(logger, route.Name, sequence, number, source, destination, Milliseconds(attemptStarted));
                    return new ConnectResult<T>(connected, ConnectError.None, "", destination, Stopwatch.GetElapsedTime(started));
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.AddressAlreadyInUse or SocketError.AddressNotAvailable)
                {
                    (exhausted ??= []).Add($"{source} ({e.Message})");
                    Log.SourceFailed(logger, route.Name, source, destination, e.Message);
                    sourceExhausted = true;
                    break;
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.TooManyOpenSockets)
                {
                    // Out of descriptors: another source or destination would need one too.
                    Log.AttemptFailed(logger, route.Name, sequence, number, source, destination, Milliseconds(attemptStarted), e.Message);
                    return Fail(ConnectError.NoDescriptors, $"no socket for {destination} from {source}: {e.Message}", destination, started);
                }
                catch (SocketException e)
                {
                    Log.AttemptFailed(logger, route.Name, sequence, number, source, destination, Milliseconds(attemptStarted), e.Message);
                    lastError = e.SocketErrorCode == SocketError.ConnectionRefused ? ConnectError.Refused : ConnectError.Failed;
                    lastDetail = $"{destination} from {source}: {e.Message}";
                }
                catch (OperationCanceledException) when (deadline.IsAbandoned)
                {
                    Log.AttemptFailed(logger, route.Name, sequence, number, source, destination, Milliseconds(attemptStarted), "the client left");
                    return Fail(ConnectError.Cancelled, $"the client left before the connect to {destination} finished", destination, started);
                }
                catch (OperationCanceledException)
                {
                    Log.AttemptFailed(logger, route.Name, sequence, number, source, destination, Milliseconds(attemptStarted),
                        cancellationToken.IsCancellationRequested ? "cancelled" : "connect timeout");
                    return Fail(cancellationToken.IsCancellationRequested ? ConnectError.Cancelled : ConnectError.Timeout,
                        $"no answer from {destination} within {route.ConnectTimeout.TotalSeconds:0.###} s", destination, started);
                }
            }

            if (!sourceExhausted)
            {
                // The upstream itself failed; another source address would not change that.
                return Fail(lastError, lastDetail, lastUpstream, started);
            }
        }

        return Fail(ConnectError.SourcesExhausted,
            $"no usable source address for {route.Upstream}; tried {string.Join(", ", exhausted ?? [])}", lastUpstream, started);

        // Static: a local function that captured a local of this async method would cost a closure per call.
        static ConnectResult<T> Fail(ConnectError error, string detail, IPEndPoint? upstream, long started) =>
            new(null, error, detail, upstream, Stopwatch.GetElapsedTime(started));
    }

    private static double Milliseconds(long since) => Stopwatch.GetElapsedTime(since).TotalMilliseconds;

    private static async ValueTask<Socket> ConnectSocketAsync(IPAddress source, IPEndPoint destination, ConnectDeadline deadline)
    {
        var cancellationToken = deadline.Token;
        var socket = new Socket(source.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            SetBindAddressNoPort(socket);
            socket.Bind(new IPEndPoint(source, 0));
            await socket.ConnectAsync(destination, cancellationToken).ConfigureAwait(false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static void SetBindAddressNoPort(Socket socket)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        try
        {
            Span<byte> on = stackalloc byte[sizeof(int)];
            MemoryMarshal.Write(on, 1);
            socket.SetRawSocketOption(IpProtoIp, IpBindAddressNoPort, on);
        }
        catch (SocketException)
        {
            // Kernels before 4.2 lack the option; binding still works, with one port pool per source.
        }
    }

    private static partial class Log
    {
        [LoggerMessage(300, LogLevel.Warning, "Route {Route}: source {Source} cannot reach {Upstream} ({Reason}); trying the next source address")]
        public static partial void SourceFailed(ILogger logger, string route, IPAddress source, IPEndPoint upstream, string reason);

        // Debug: every attempt of a connect, numbered per connect (#N is one client's connection).
        [LoggerMessage(301, LogLevel.Debug, "{Route}: connect #{Connect} attempt {Attempt}: {Source} → {Destination} connected in {Milliseconds:0.###} ms")]
        public static partial void AttemptConnected(ILogger logger, string route, long connect, int attempt, IPAddress source, IPEndPoint destination, double milliseconds);

        [LoggerMessage(302, LogLevel.Debug, "{Route}: connect #{Connect} attempt {Attempt}: {Source} → {Destination} failed after {Milliseconds:0.###} ms: {Reason}")]
        public static partial void AttemptFailed(ILogger logger, string route, long connect, int attempt, IPAddress source, IPEndPoint destination, double milliseconds, string reason);

        [LoggerMessage(303, LogLevel.Debug, "{Route}: connect #{Connect}: {Host} resolved to {Addresses} in {Milliseconds:0.###} ms")]
        public static partial void Resolved(ILogger logger, string route, long connect, string host, string addresses, double milliseconds);
    }
}
