using System.Collections.Concurrent;
using System.Net;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Faults;
using BindProxy.Transport;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace BindProxy.Forwarding;

/// <summary>
/// Kestrel connection middleware for proxy listeners: what every connection needs before its bytes
/// move (the route still served, the connection limits, interception, the source address), then
/// the connection goes to its forwarder, by <see cref="ForwardingPath"/>'s rule: the pipe path for
/// one whose bytes are read as a stream, the engine's own (chosen at startup) otherwise.
/// </summary>
internal sealed partial class ProxyConnectionHandler(
    ConnectionRegistry registry,
    IConnectionForwarder engine,
    PipeForwarder pipes,
    IKafkaForwarder kafkaForwarder,
    SourceAssigner assigner,
    InterceptedConnections interceptions,
    ProxyMetrics metrics,
    FaultTable faults,
    ILogger<ProxyConnectionHandler> logger) : ConnectionHandler
{
    private readonly ConcurrentDictionary<string, LimitLog> _limitLogs = new(StringComparer.Ordinal);

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
        if (!served.TryEnterConnection(route.MaxConnections))
        {
            Refuse(route, inbound, nameof(RouteModel.MaxConnections), route.MaxConnections ?? 0, "max_connections");
            return;
        }

        // A connection that runs on its own outlives this call: its close releases the counts instead.
        bool detached = false;
        try
        {
            if (!registry.TryEnterClient(served.Root, inbound.Client.Address, route.MaxConnectionsPerClient))
            {
                Refuse(route, inbound, nameof(RouteModel.MaxConnectionsPerClient), route.MaxConnectionsPerClient ?? 0, "max_connections_per_client");
                return;
            }

            try
            {
                detached = await ServeAsync(connection, served, route, inbound).ConfigureAwait(false);
            }
            finally
            {
                if (!detached)
                {
                    registry.LeaveClient(served.Root, inbound.Client.Address);
                }
            }
        }
        finally
        {
            if (!detached)
            {
                served.LeaveConnection();
            }
        }
    }

    private void Refuse(RouteModel route, IInboundSocketFeature client, string limit, int max, string metric)
    {
        _limitLogs.GetOrAdd($"{route.Name}|{limit}", _ => new LimitLog(logger)).Refused(route.Name, limit, max, client.Client);
        metrics.Rejected(route.Name, metric);
        client.Reset();
    }

    /// <summary>Serves one connection; true when the forwarder left it running on its own.</summary>
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

        bool detached = false;
        try
        {
            var forwarder = ForwardingPath.NeedsStream(route, faults.Find(route.Name)) ? pipes : engine;
            detached = await forwarder.ForwardAsync(connection, served, route, inbound, lease, intercepted).ConfigureAwait(false);
            return detached;
        }
        finally
        {
            // A connection that runs on its own gives the lease back when it closes.
            if (!detached)
            {
                lease?.Dispose();
            }
        }
    }

    /// <summary>Leases the address of the client its first Kafka request names (by client.id).</summary>
    private async Task<(AssignmentLease? Lease, bool Refused)> AssignByClientIdAsync(RouteModel route, PipeSocket client, CancellationToken cancellationToken)
    {
        var clientId = await kafkaForwarder.PeekClientIdAsync(client, route.ConnectTimeout, cancellationToken).ConfigureAwait(false);
        return await assigner.AssignAsync(route, client.RemoteEndPoint, client.LocalEndPoint, clientId).ConfigureAwait(false);
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

        [LoggerMessage(203, LogLevel.Warning, "Connection from {Client} arrived on route {Route}, which is no longer configured; closed")]
        public static partial void RouteGone(ILogger logger, string route, IPEndPoint client);
    }
}
