using System.Collections.Concurrent;
using System.Diagnostics;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Faults;
using BindProxy.Outbound;
using BindProxy.Transport;
using Microsoft.AspNetCore.Connections;

namespace BindProxy.Forwarding;

/// <summary>
/// The pipe engine: forwards a connection between two <see cref="PipeSocket"/>s on .NET sockets,
/// through <see cref="Forwarder"/> or, on a Kafka route, the Kafka layer. Runs everywhere; the
/// relay engine hands it the connections it does not take. A connection is served to its end
/// within <see cref="ForwardAsync"/>.
/// </summary>
internal sealed class PipeForwarder(
    UpstreamConnector connector,
    TransportOptions options,
    IKafkaForwarder kafkaForwarder,
    InterceptedConnections interceptions,
    ConnectionLifecycle lifecycle,
    FaultTable faults,
    ProcessLookup processes,
    ProxyMetrics metrics) : IConnectionForwarder
{
    private readonly ConcurrentDictionary<int, TransportOptions> _kafkaOptions = new();
    private readonly PlainForwards _plain = new(faults);

    /// <summary>Serves the connection until it closes; always false (nothing outlives the call).</summary>
    public async Task<bool> ForwardAsync(ConnectionContext connection, ServedRoute served, RouteModel route, IInboundSocketFeature inbound,
        AssignmentLease? lease, PendingInterception? intercepted)
    {
        // Decided before a byte moves: whether its bytes go through the route's toxics, or as they are.
        var routeFaults = route.Kafka is null ? faults.Find(route.Name) : null;
        var tap = lifecycle.Arm(served, inbound.Client, inbound.Listener);
        if (tap is not null)
        {
            tap.ForwardsUnchanged = route.Kafka is null && routeFaults is null;
        }

        inbound.ClientTap = tap?.ClientLeg;
        var client = inbound.Socket;
        if (await client.HandshakeAsync().ConfigureAwait(false) is { } refused)
        {
            lifecycle.ListenerTlsFailed(route, client.RemoteEndPoint, refused);
            client.ShutdownSend();
            return false;
        }

        if (client.TlsSession is { } clientTls)
        {
            served.LastClientTls = clientTls;
        }

        var connect = await connector.ConnectAsync(route, intercepted?.OriginalDestination, lease?.Assignment.Address, connection.ConnectionClosed).ConfigureAwait(false);
        if (!connect.IsConnected)
        {
            lifecycle.ConnectFailed(route, client.RemoteEndPoint, connect.Error, connect.Detail, connect.Elapsed);
            client.Abort();
            return false;
        }

        // A Kafka response that may need rewriting is buffered whole, so its side may hold a full frame.
        var upstreamOptions = route.Kafka is { } kafka
            ? _kafkaOptions.GetOrAdd(kafka.MaxFrameSize, max => options with { MaxBufferedBytes = Math.Max(options.MaxBufferedBytes, max + options.ReceiveBufferSize) })
            : options;
        var upstream = new PipeSocket(connect.Connection!, upstreamOptions) { Tap = tap?.UpstreamLeg };
        await using (upstream.ConfigureAwait(false))
        {
            if (route.Tls is { } tls)
            {
                var serverName = tls.ServerNameFor(route, upstream.RemoteEndPoint);
                upstream.UseTls(TlsLeg.ToUpstream(tls, serverName));
                var started = Stopwatch.GetTimestamp();
                if (await upstream.HandshakeAsync().ConfigureAwait(false) is { } failed)
                {
                    lifecycle.UpstreamTlsFailed(route, client.RemoteEndPoint, upstream.LocalEndPoint, upstream.RemoteEndPoint, serverName, failed,
                        connect.Elapsed + Stopwatch.GetElapsedTime(started));
                    client.ShutdownSend();
                    return false;
                }

                served.LastUpstreamTls = upstream.TlsSession;
            }
            else if (route.Kafka is not null)
            {
                // A broker that expects TLS answers a plaintext request with an alert: said, not forwarded.
                upstream.RefuseTls();
            }

            upstream.StartReceiving();
            var who = intercepted is null ? null : await interceptions.OpenedAsync(route.Name, intercepted, client.RemoteEndPoint, upstream.LocalEndPoint).ConfigureAwait(false);
            var live = lifecycle.Add(served, route, new PipeLegs(client, upstream), lease, who, tap);
            lifecycle.AbortIfTooLate(live);
            lifecycle.Opened(live, connect.Elapsed);
            var reason = CloseReason.ProxyAborted;
            try
            {
                string clientId = "";
                if (route.Kafka is not null)
                {
                    reason = await kafkaForwarder.ForwardAsync(live, client, upstream, connection.ConnectionClosed).ConfigureAwait(false);
                    clientId = live.Kafka is { } session ? $" (client.id {session.ClientId ?? "-"}, {session.RequestCount} requests)" : "";
                }
                else if (routeFaults is not null)
                {
                    // The route has (or had) toxics: its bytes go through them, as they change.
                    reason = await ThroughToxicsAsync(route, routeFaults, client, upstream, default, default, connection.ConnectionClosed).ConfigureAwait(false);
                }
                else
                {
                    reason = await ForwardPlainAsync(route, client, upstream, connection.ConnectionClosed).ConfigureAwait(false);
                }

                reason = live.ProxyReason ?? reason;
                if (!lifecycle.LogMismatch(live, client, upstream))
                {
                    lifecycle.LogClosed(live, reason, Stopwatch.GetElapsedTime(live.StartedTimestamp).TotalMilliseconds, clientId);
                }
            }
            finally
            {
                lifecycle.Closed(live, reason);
                lifecycle.Remove(live);
            }
        }

        return false;
    }

    /// <summary>
    /// Serves to its end a connection another engine forwarded until its route gained a toxic (a
    /// relay connection that moved): its two sockets, their counts continued, each direction's
    /// held bytes sent first, then the route's toxics. The caller made the sockets and switched
    /// the registered connection to them; it disposes them after.
    /// </summary>
    public Task<CloseReason> ContinueMovedAsync(RouteModel route, PipeSocket client, PipeSocket upstream, ReadOnlyMemory<byte> heldForUpstream, ReadOnlyMemory<byte> heldForClient) =>
        ThroughToxicsAsync(route, faults.For(route.Name), client, upstream, heldForUpstream, heldForClient, CancellationToken.None);

    /// <summary>
    /// A connection of a route with no toxic: forwarded as it is until the route gains one, then
    /// through the toxics from its next read on. A capture of it keeps reporting its bytes once, as
    /// received (<see cref="Capture.ConnectionTap.ForwardsUnchanged"/> was decided when it opened).
    /// </summary>
    private async Task<CloseReason> ForwardPlainAsync(RouteModel route, PipeSocket client, PipeSocket upstream, CancellationToken cancellationToken)
    {
        var plain = _plain.Add(route.Name, client, upstream);
        try
        {
            if (faults.HasToxics(route.Name))
            {
                plain.Switch(); // gained one since the path was chosen, before the watch began
            }

            var identity = new ConnectionIdentity(client.RemoteEndPoint, () => processes.Find(client.RemoteEndPoint, client.LocalEndPoint));
            return await ToxicPump.ForwardPlainThenAsync(client, upstream, plain, () => faults.For(route.Name), identity,
                toxic => metrics.FaultApplied(route.Name, toxic.Name, toxic.Type), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _plain.Remove(plain);
        }
    }

    private Task<CloseReason> ThroughToxicsAsync(RouteModel route, RouteFaults routeFaults, PipeSocket client, PipeSocket upstream,
        ReadOnlyMemory<byte> heldForUpstream, ReadOnlyMemory<byte> heldForClient, CancellationToken cancellationToken)
    {
        var identity = new ConnectionIdentity(client.RemoteEndPoint, () => processes.Find(client.RemoteEndPoint, client.LocalEndPoint));
        return ToxicPump.ForwardAsync(client, upstream, routeFaults, identity, toxic => metrics.FaultApplied(route.Name, toxic.Name, toxic.Type),
            heldForUpstream, heldForClient, cancellationToken);
    }
}
