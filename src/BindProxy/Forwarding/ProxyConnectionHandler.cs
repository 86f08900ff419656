using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Runtime.Versioning;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Outbound;
using BindProxy.Transport;
using BindProxy.Transport.Linux;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace BindProxy.Forwarding;

/// <summary>
/// Kestrel connection middleware for proxy listeners: connects the route's upstream from a
/// source address, forwards both ways, and logs one open and one close line per connection.
/// </summary>
internal sealed partial class ProxyConnectionHandler(
    UpstreamConnector connector,
    ConnectionRegistry registry,
    TransportOptions options,
    ForwardingEngine engine,
    IKafkaForwarder kafkaForwarder,
    SourceAssigner assigner,
    DescriptorBudget descriptors,
    InterceptedConnections interceptions,
    ProxyMetrics metrics,
    UpstreamRefusals refusals,
    DrainCoordinator drains,
    ILogger<ProxyConnectionHandler> logger,
    RelayEngine? relays = null,
    HandoffFaults? faults = null) : ConnectionHandler, IRelayOwner
{
    [SupportedOSPlatform("linux")]
    private static readonly Func<IPAddress, IPEndPoint, ConnectDeadline, (RelayEngine Relays, SocketHandle Client), ValueTask<SocketHandle>> s_connectRaw =
        static (source, destination, deadline, state) => state.Relays.ConnectAsync(source, destination, deadline, state.Client);

    private readonly ConcurrentDictionary<string, LimitLog> _limitLogs = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<int, TransportOptions> _kafkaOptions = new();

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        var inbound = connection.Features.Get<IInboundSocketFeature>()
            ?? throw new InvalidOperationException("Proxy listeners must use the BindProxy socket transport.");
        var served = inbound.Route;
        if (served.IsRemoved)
        {
            // Accepted just before its listener closed.
            Log.RouteGone(logger, served.Name, inbound.Client);
            metrics.Rejected(served.Name, "route_gone");
            inbound.Reset();
            return;
        }

        var route = served.Model;
        if (!registry.TryEnter(route.Name, route.MaxConnections))
        {
            Refuse(route, inbound, "MaxConnections", route.MaxConnections ?? 0, "max_connections");
            return;
        }

        // A relayed connection outlives this call: its close releases the counts instead.
        bool relayed = false;
        try
        {
            if (!registry.TryEnterClient(route.Root.Name, inbound.Client.Address, route.MaxConnectionsPerClient))
            {
                Refuse(route, inbound, "MaxConnectionsPerClient", route.MaxConnectionsPerClient ?? 0, "max_connections_per_client");
                return;
            }

            try
            {
                relayed = await ServeAsync(connection, served, route, inbound).ConfigureAwait(false);
            }
            finally
            {
                if (!relayed)
                {
                    registry.LeaveClient(route.Root.Name, inbound.Client.Address);
                }
            }
        }
        finally
        {
            if (!relayed)
            {
                registry.Leave(route.Name);
            }
        }
    }

    private void Refuse(RouteModel route, IInboundSocketFeature client, string limit, int max, string metric)
    {
        _limitLogs.GetOrAdd($"{route.Name}|{limit}", _ => new LimitLog(logger)).Refused(route.Name, limit, max, client.Client);
        metrics.Rejected(route.Name, metric);
        client.Reset();
    }

    /// <summary>Serves one connection; true when it was handed to a relay that now runs on its own.</summary>
    private async Task<bool> ServeAsync(ConnectionContext connection, ServedRoute served, RouteModel route, IInboundSocketFeature inbound)
    {
        // An intercepting route's upstream is where the client was going before the redirect.
        PendingInterception? intercepted = null;
        if (route.Intercept is not null && (intercepted = interceptions.Begin(route, inbound)) is null)
        {
            inbound.Reset();
            return false;
        }

        // The client's own socket is connected to the original destination, not to the listener.
        var (lease, refused) = route.Assignment.Policy switch
        {
            AssignPolicy.RoundRobin => (null, false),
            AssignPolicy.KafkaClientId => await AssignByClientIdAsync(route, inbound.Socket, connection.ConnectionClosed).ConfigureAwait(false),
            _ => await assigner.AssignAsync(route, inbound.Client, intercepted?.OriginalDestination ?? inbound.Listener, null).ConfigureAwait(false),
        };
        if (refused)
        {
            Log.NoFreeSource(logger, route.Name, inbound.Client);
            inbound.Reset();
            return false;
        }

        // Plain Tcp: the relay engine forwards it without a pipe, and holds it without this call.
        if (route.Kafka is null && engine.IsRelay && inbound.TryDetach(out var client, out var reservation))
        {
            bool started = false;
            try
            {
                started = await RelayAsync(connection, served, route, inbound, client, reservation, lease, intercepted).ConfigureAwait(false);
                return started;
            }
            finally
            {
                if (!started)
                {
                    lease?.Dispose();
                }
            }
        }

        using (lease)
        {
            await ServeAsync(connection, served, route, inbound.Socket, lease, intercepted).ConfigureAwait(false);
        }

        return false;
    }

    /// <summary>Leases the address of the client its first Kafka request names (by client.id).</summary>
    private async Task<(AssignmentLease? Lease, bool Refused)> AssignByClientIdAsync(RouteModel route, PipeSocket client, CancellationToken cancellationToken)
    {
        var clientId = await kafkaForwarder.PeekClientIdAsync(client, route.ConnectTimeout, cancellationToken).ConfigureAwait(false);
        return await assigner.AssignAsync(route, client.RemoteEndPoint, client.LocalEndPoint, clientId).ConfigureAwait(false);
    }

    /// <summary>
    /// Connects upstream and starts a <see cref="TcpRelay"/>; false (client reset) when the connect
    /// failed. Until the relay takes them, this owns the client's socket, the upstream one and the
    /// descriptors reserved for them, and releases all three on every way out, exceptions included.
    /// </summary>
    [SupportedOSPlatform("linux")]
    private async Task<bool> RelayAsync(ConnectionContext connection, ServedRoute served, RouteModel route, IInboundSocketFeature inbound,
        SocketHandle client, DescriptorReservation reservation, AssignmentLease? lease, PendingInterception? intercepted)
    {
        SocketHandle? upstream = null;
        TcpRelay? relay = null;
        try
        {
            // Registered whenever the relay engine is the one chosen (see ProxyHost).
            var relayEngine = relays ?? throw new InvalidOperationException("the relay engine is not registered");
            var connect = await connector.ConnectAsync(route, intercepted?.OriginalDestination, lease?.Assignment.Address, s_connectRaw, (relayEngine, client), connection.ConnectionClosed).ConfigureAwait(false);
            if (!connect.IsConnected)
            {
                ConnectFailed(route, inbound.Client, connect.Error, connect.Detail, connect.Elapsed, client);
                return false;
            }

            upstream = connect.Connection!;
            faults?.At(HandoffStep.Connected);
            var source = RawSocket.LocalEndPoint(upstream);
            var who = intercepted is null ? null : await interceptions.OpenedAsync(route.Name, intercepted, inbound.Client, source).ConfigureAwait(false);
            relay = new TcpRelay(relayEngine.NextLoop(), client, upstream, reservation, inbound.Client, inbound.Listener, source, connect.Upstream!);
            var live = registry.Add(served, route, relay);
            try
            {
                faults?.At(HandoffStep.Registered);
                live.Lease = lease;
                live.Intercepted = who;
                refusals.Connected(route);
                Log.Opened(logger, route.Name, relay.Client, relay.Source, relay.Upstream, connect.Elapsed.TotalMilliseconds);
                metrics.Opened(live, connect.Elapsed);
            }
            catch
            {
                live.Lease = null; // the caller gives the lease back
                registry.Remove(live);
                throw;
            }

            // From here the relay owns both sockets and the reservation, and ends on its own.
            relay.Start(this, live);
            AbortIfTooLate(live);
            return true;
        }
        catch when (relay is not null)
        {
            relay.Discard();
            throw;
        }
        finally
        {
            if (relay is null)
            {
                client.CloseAbortive();
                upstream?.CloseAbortive();
                reservation.Return();
            }
        }
    }

    [SupportedOSPlatform("linux")]
    public void OnRelayClosed(TcpRelay relay, object? state, CloseReason reason)
    {
        var connection = (ProxiedConnection)state!;
        var route = connection.RouteModel;
        reason = connection.ProxyReason ?? reason;
        metrics.Closed(connection, reason);
        connection.Lease?.Dispose();
        registry.LeaveClient(route.Root.Name, relay.Client.Address);
        registry.Leave(route.Name);
        if (!logger.IsEnabled(LogLevel.Information))
        {
            registry.Remove(connection);
            return;
        }

        // This usually runs on the relay's loop; the log line is written off it. The connection
        // leaves the registry after its line, so a shutdown that waits for the registry to empty
        // does not end the process before the line is written.
        double durationMs = Stopwatch.GetElapsedTime(connection.StartedTimestamp).TotalMilliseconds;
        ThreadPool.UnsafeQueueUserWorkItem(_ =>
        {
            Log.Closed(logger, route.Name, relay.Client, relay.Source, relay.Upstream,
                relay.BytesToUpstream, relay.BytesToClient, durationMs, reason.Describe(), "");
            registry.Remove(connection);
        }, null);
    }

    /// <summary>
    /// A connection that was still connecting its upstream when its route's drain (or the
    /// shutdown's) ended, or after the user asked to stop now, is reset as the drain would have.
    /// </summary>
    private void AbortIfTooLate(ProxiedConnection live)
    {
        if (live.Served.IsRetired || drains.StoppingNow)
        {
            live.Abort(CloseReason.ProxyAborted);
        }
    }

    /// <param name="socket">The relay path's client socket: a cancelled connect is put down to the client when it left.</param>
    private void ConnectFailed(RouteModel route, IPEndPoint client, ConnectError error, string detail, TimeSpan elapsed, SocketHandle? socket = null)
    {
        if (error == ConnectError.NoDescriptors)
        {
            // As at the budget: counted and said at most every few seconds, not a line per client.
            descriptors.Refuse(route.Name, client, system: true);
            return;
        }

        var reason = error switch
        {
            ConnectError.Timeout => CloseReason.ConnectTimeout,
            ConnectError.Refused => CloseReason.ConnectRefused,
            ConnectError.SourcesExhausted => CloseReason.SourcesExhausted,
            ConnectError.Cancelled when socket is not null && OperatingSystem.IsLinux() && RawSocket.Peek(socket) is var peer && peer != PeerState.Open =>
                peer == PeerState.Closed ? CloseReason.ClientClosed : CloseReason.ClientReset,
            ConnectError.Cancelled => CloseReason.ProxyAborted,
            _ => CloseReason.ConnectFailed,
        };
        if (error == ConnectError.Refused)
        {
            refusals.Refused(route, client, detail);
        }
        else
        {
            Log.ConnectFailed(logger, route.Name, client, reason.Describe(), detail, elapsed.TotalMilliseconds);
        }

        metrics.ConnectFailed(route.Name, error, elapsed);
    }

    private async Task ServeAsync(ConnectionContext connection, ServedRoute served, RouteModel route, PipeSocket client, AssignmentLease? lease, PendingInterception? intercepted)
    {
        var connect = await connector.ConnectAsync(route, intercepted?.OriginalDestination, lease?.Assignment.Address, connection.ConnectionClosed).ConfigureAwait(false);
        if (!connect.IsConnected)
        {
            ConnectFailed(route, client.RemoteEndPoint, connect.Error, connect.Detail, connect.Elapsed);
            client.Abort();
            return;
        }

        // A Kafka response that may need rewriting is buffered whole, so its side may hold a full frame.
        var upstreamOptions = route.Kafka is { } kafka
            ? _kafkaOptions.GetOrAdd(kafka.MaxFrameSize, max => options with { MaxBufferedBytes = Math.Max(options.MaxBufferedBytes, max + options.ReceiveBufferSize) })
            : options;
        var upstream = new PipeSocket(connect.Connection!, upstreamOptions);
        await using (upstream.ConfigureAwait(false))
        {
            upstream.StartReceiving();
            var who = intercepted is null ? null : await interceptions.OpenedAsync(route.Name, intercepted, client.RemoteEndPoint, upstream.LocalEndPoint).ConfigureAwait(false);
            var live = registry.Add(served, route, new PipeLegs(client, upstream));
            live.Lease = lease;
            live.Intercepted = who;
            AbortIfTooLate(live);
            refusals.Connected(route);
            Log.Opened(logger, route.Name, client.RemoteEndPoint, upstream.LocalEndPoint, upstream.RemoteEndPoint, connect.Elapsed.TotalMilliseconds);
            metrics.Opened(live, connect.Elapsed);
            var reason = CloseReason.ProxyAborted;
            try
            {
                string clientId = "";
                if (route.Kafka is not null)
                {
                    reason = await kafkaForwarder.ForwardAsync(live, client, upstream, connection.ConnectionClosed).ConfigureAwait(false);
                    clientId = live.Kafka is { } session ? $" (client.id {session.ClientId ?? "-"}, {session.RequestCount} requests)" : "";
                }
                else
                {
                    reason = await Forwarder.ForwardAsync(client, upstream, connection.ConnectionClosed).ConfigureAwait(false);
                }

                reason = live.ProxyReason ?? reason;
                Log.Closed(logger, route.Name, client.RemoteEndPoint, upstream.LocalEndPoint, upstream.RemoteEndPoint,
                    upstream.BytesSent, client.BytesSent, Stopwatch.GetElapsedTime(live.StartedTimestamp).TotalMilliseconds, reason.Describe(), clientId);
            }
            finally
            {
                metrics.Closed(live, reason);
                registry.Remove(live);
            }
        }
    }

    /// <summary>At the limit every refused connection would log; this says it once per interval with a count.</summary>
    private sealed class LimitLog(ILogger logger)
    {
        private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);
        private long _nextLogTicks;
        private long _refusedSinceLog;

        public void Refused(string route, string limit, int max, IPEndPoint client)
        {
            long count = Interlocked.Increment(ref _refusedSinceLog);
            long now = Environment.TickCount64;
            long next = Interlocked.Read(ref _nextLogTicks);
            if (now >= next && Interlocked.CompareExchange(ref _nextLogTicks, now + (long)Interval.TotalMilliseconds, next) == next)
            {
                Interlocked.Add(ref _refusedSinceLog, -count);
                Log.LimitReached(logger, route, limit, max, client, count, Interval.TotalSeconds);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(205, LogLevel.Warning, "{Route}: {Client} refused: every source address is assigned to another client and WhenExhausted is refuse")]
        public static partial void NoFreeSource(ILogger logger, string route, IPEndPoint client);

        [LoggerMessage(204, LogLevel.Warning, "{Route}: at {Limit} {Max}; refused {Client} ({Refused} refused since the last such line; logged at most every {IntervalSeconds} s)")]
        public static partial void LimitReached(ILogger logger, string route, string limit, int max, IPEndPoint client, long refused, double intervalSeconds);

        [LoggerMessage(200, LogLevel.Information, "{Route}: {Client} → {Source} → {Upstream} open (connect {ConnectMs:0.0} ms)")]
        public static partial void Opened(ILogger logger, string route, IPEndPoint client, IPEndPoint source, IPEndPoint upstream, double connectMs);

        [LoggerMessage(201, LogLevel.Information, "{Route}: {Client} → {Source} → {Upstream} closed: {Reason}; {BytesToUpstream} B up, {BytesToClient} B down, {DurationMs:0} ms{Kafka}")]
        public static partial void Closed(ILogger logger, string route, IPEndPoint client, IPEndPoint source, IPEndPoint upstream, long bytesToUpstream, long bytesToClient, double durationMs, string reason, string kafka);

        [LoggerMessage(202, LogLevel.Warning, "{Route}: {Client} closed: {Reason}: {Detail} (after {ElapsedMs:0} ms)")]
        public static partial void ConnectFailed(ILogger logger, string route, IPEndPoint client, string reason, string detail, double elapsedMs);

        [LoggerMessage(203, LogLevel.Warning, "Connection from {Client} arrived on route {Route}, which is no longer configured; closed")]
        public static partial void RouteGone(ILogger logger, string route, IPEndPoint client);
    }
}
