using BindProxy.Transport;
using Microsoft.Extensions.Logging;

namespace BindProxy.Forwarding;

/// <summary>
/// Finds connections that have bytes waiting in one direction and have made no progress with them
/// for the stall timeout (<c>BindProxy:StallTimeout</c>) although the receiving side could take them, and
/// says so once per stall: a warning with both directions' state, a metric, and the
/// <see cref="ProxiedConnection.IsStalled"/> flag the admin API shows. A slow peer is not a stall
/// (its window is closed, or its socket is full); bytes the proxy holds while the destination's
/// socket has room, or a kernel queue that an open window does not drain, are a defect, of the
/// proxy or of the network, that would otherwise only show as a client waiting forever.
/// </summary>
/// <remarks>
/// Called by the sweeper once a second for every connection: counters only, and the kernel is
/// asked about a connection only while it is flushing or once a direction has waited the whole
/// timeout.
/// </remarks>
internal sealed partial class StallWatchdog(RouteTable routes, ProxyMetrics metrics, ILogger<StallWatchdog> logger)
{
    public void Check(ProxiedConnection connection, long now)
    {
        var legs = connection.Legs;
        bool flushing = legs.IsFlushing;
        var queued = flushing ? legs.Inspect() : default;
        ref var watch = ref connection.Watch;
        var stallTimeout = routes.Current.StallTimeout;
        long limit = (long)stallTimeout.TotalMilliseconds;

        bool upWaits = Waiting(ref watch.ToUpstream, legs.BytesToUpstream, legs.HeldForUpstream, queued.UpstreamQueue?.Unacknowledged ?? 0, now, limit);
        bool downWaits = Waiting(ref watch.ToClient, legs.BytesToClient, legs.HeldForClient, queued.ClientQueue?.Unacknowledged ?? 0, now, limit);
        if (!upWaits && !downWaits)
        {
            if (connection.IsStalled)
            {
                connection.MarkStalled(false);
                Log.Resumed(logger, connection.Route, connection.Client, connection.Source, connection.Upstream);
            }

            return;
        }

        var inspection = flushing ? queued : legs.Inspect();
        bool upStalled = upWaits && Stalled(inspection.HeldForUpstream, inspection.UpstreamQueue);
        bool downStalled = downWaits && Stalled(inspection.HeldForClient, inspection.ClientQueue);
        if (!(upStalled || downStalled) || connection.IsStalled)
        {
            return;
        }

        connection.MarkStalled(true);
        metrics.Stalled(connection.Route);
        Log.Stalled(logger, connection.Route, connection.Client, connection.Source, connection.Upstream, stallTimeout.TotalSeconds,
            upStalled ? "to the upstream" : "to the client",
            Describe("to the upstream", inspection.HeldForUpstream, inspection.UpstreamQueue),
            Describe("to the client", inspection.HeldForClient, inspection.ClientQueue),
            legs.State);
    }

    /// <summary>
    /// Whether a direction has had bytes waiting (in the proxy, or in a flushing connection's kernel
    /// queue beyond its FIN) with nothing handed on or acknowledged for <paramref name="limit"/> ms.
    /// </summary>
    private static bool Waiting(ref DirectionWatch watch, long sent, long held, long queued, long now, long limit)
    {
        if (sent != watch.Sent || queued != watch.Queued || (held <= 0 && queued <= 1) || watch.ChangedAt == 0)
        {
            watch.Sent = sent;
            watch.Queued = queued;
            watch.ChangedAt = now;
            return false;
        }

        return now - watch.ChangedAt >= limit;
    }

    /// <summary>Bytes held while the destination's socket has room, or queued while the peer's window is open.</summary>
    private static bool Stalled(long held, SendQueueInfo? queue) =>
        queue is { } q && ((held > 0 && q.Writable) || (q.Unacknowledged > 1 && q.PeerWindow > 0));

    private static string Describe(string direction, long held, SendQueueInfo? queue) => queue is { } q
        ? $"{direction}: {held} B held by the proxy, {q.Unacknowledged} B in the kernel's send queue ({q.NotSent} B not sent yet), peer window {(q.PeerWindow is { } w ? $"{w} B" : "unknown")}, socket {(q.Writable ? "writable" : "full")}"
        : $"{direction}: {held} B held by the proxy, kernel queue unknown";

    private static partial class Log
    {
        [LoggerMessage(210, LogLevel.Warning, "{Route}: {Client} → {Source} → {Upstream}: stalled: no progress {Direction} for {Seconds} s although that side could take the bytes; {Up}; {Down}; state {State}. This is a defect: please report it with this line")]
        public static partial void Stalled(ILogger logger, string route, System.Net.IPEndPoint client, System.Net.IPEndPoint source, System.Net.IPEndPoint upstream, double seconds, string direction, string up, string down, string state);

        [LoggerMessage(211, LogLevel.Information, "{Route}: {Client} → {Source} → {Upstream}: bytes move again after a stall")]
        public static partial void Resumed(ILogger logger, string route, System.Net.IPEndPoint client, System.Net.IPEndPoint source, System.Net.IPEndPoint upstream);
    }
}
