using System.Net;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Interception;
using BindProxy.Outbound;
using BindProxy.Transport;
using BindProxy.Transport.Linux;
using Microsoft.Extensions.Logging;

namespace BindProxy.Forwarding;

/// <summary>
/// What a forwarded connection goes through whichever engine moves its bytes: a failed upstream
/// connect, the registry entry, the open line, the too-late check and the close line, each with
/// its metrics, so both <see cref="IConnectionForwarder"/>s say and count them alike.
/// </summary>
internal sealed partial class ConnectionLifecycle(
    ConnectionRegistry registry,
    ProxyMetrics metrics,
    UpstreamRefusals refusals,
    DrainCoordinator drains,
    DescriptorBudget descriptors,
    CaptureHub captures,
    ILogger<ConnectionLifecycle> logger)
{
    /// <summary>Whether close lines are written; without them a close needs no trip off the relay loop.</summary>
    public bool LogsClosings => logger.IsEnabled(LogLevel.Information);

    /// <summary>Says and counts an upstream connect that failed; the caller resets the client.</summary>
    /// <param name="socket">The relay path's client socket: a cancelled connect is put down to the client when it left.</param>
    public void ConnectFailed(RouteModel route, IPEndPoint client, ConnectError error, string detail, TimeSpan elapsed, SocketHandle? socket = null)
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

    /// <summary>
    /// Enters a connected connection in the registry with its lease and, if intercepted, its client,
    /// and puts a running capture's tap on it when one wants it.
    /// </summary>
    /// <param name="tap">The tap armed before its bytes began to move (pipe path), if any.</param>
    /// <param name="fromStart">No byte has moved yet (the relay has not started), so a tap made now sees the streams whole.</param>
    public ProxiedConnection Add(ServedRoute served, RouteModel route, IConnectionLegs legs, AssignmentLease? lease, InterceptedClient? intercepted,
        Capture.ConnectionTap? tap = null, bool fromStart = false)
    {
        var live = registry.Add(served, route, legs);
        live.Lease = lease;
        live.Intercepted = intercepted;
        captures.Opened(live, tap, fromStart);
        return live;
    }

    /// <summary>A tap armed for a pipe-path connection, before its client's first byte is read; null when no capture may want it.</summary>
    public Capture.ConnectionTap? Arm(ServedRoute served, IPEndPoint client, IPEndPoint listener) => captures.Arm(served, client, listener);

    /// <summary>Takes a closed connection out of the registry (which wakes a waiting drain).</summary>
    public void Remove(ProxiedConnection live) => registry.Remove(live);

    /// <summary>Says and counts a connection whose upstream is connected and which is in the registry.</summary>
    public void Opened(ProxiedConnection live, TimeSpan connectElapsed)
    {
        refusals.Connected(live.RouteModel);
        Log.Opened(logger, live.Route, live.Client, live.Source, live.Upstream, connectElapsed.TotalMilliseconds);
        metrics.Opened(live, connectElapsed);
    }

    /// <summary>
    /// A connection that was still connecting its upstream when its route's drain (or the
    /// shutdown's) ended, or after the user asked to stop now, is reset as the drain would have.
    /// </summary>
    public void AbortIfTooLate(ProxiedConnection live)
    {
        if (live.Served.IsRetired || drains.StoppingNow)
        {
            live.Abort(CloseReason.ProxyAborted);
        }
    }

    /// <summary>Counts a connection that has closed for <paramref name="reason"/>.</summary>
    public void Closed(ProxiedConnection live, CloseReason reason) => metrics.Closed(live, reason);

    /// <summary>Writes the close line of a connection that closed <paramref name="durationMs"/> after it opened.</summary>
    /// <param name="kafka">A Kafka route's session, as the line ends with it; "" otherwise.</param>
    public void LogClosed(ProxiedConnection live, CloseReason reason, double durationMs, string kafka) =>
        Log.Closed(logger, live.Route, live.Client, live.Source, live.Upstream, live.BytesToUpstream, live.BytesToClient, durationMs, reason.Describe(), kafka);

    private static partial class Log
    {
        [LoggerMessage(200, LogLevel.Information, "{Route}: {Client} → {Source} → {Upstream} open (connect {ConnectMs:0.0} ms)")]
        public static partial void Opened(ILogger logger, string route, IPEndPoint client, IPEndPoint source, IPEndPoint upstream, double connectMs);

        [LoggerMessage(201, LogLevel.Information, "{Route}: {Client} → {Source} → {Upstream} closed: {Reason}; {BytesToUpstream} B up, {BytesToClient} B down, {DurationMs:0} ms{Kafka}")]
        public static partial void Closed(ILogger logger, string route, IPEndPoint client, IPEndPoint source, IPEndPoint upstream, long bytesToUpstream, long bytesToClient, double durationMs, string reason, string kafka);

        [LoggerMessage(202, LogLevel.Warning, "{Route}: {Client} closed: {Reason}: {Detail} (after {ElapsedMs:0} ms)")]
        public static partial void ConnectFailed(ILogger logger, string route, IPEndPoint client, string reason, string detail, double elapsedMs);
    }
}
