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
    private readonly ConnectionLines _lines = new();

    /// <summary>Whether close lines are written; without them a close needs no trip off the relay loop.</summary>
    public bool LogsClosings => logger.IsEnabled(LogLevel.Information);

    /// <summary>
    /// Says and counts a client refused by its listener's TLS (plaintext sent, nothing sent in
    /// time, a failed handshake), as the <c>tls_handshake</c> rejection.
    /// </summary>
    public void ListenerTlsFailed(RouteModel route, IPEndPoint client, string problem)
    {
        Log.ListenerTlsFailed(logger, route.Name, client, problem);
        metrics.Rejected(route.Name, "tls_handshake");
    }

    /// <summary>Says a TLS handshake with the upstream that failed; the caller closes the client.</summary>
    public void UpstreamTlsFailed(RouteModel route, IPEndPoint client, IPEndPoint source, IPEndPoint upstream, string serverName, string problem, TimeSpan elapsed)
    {
        Log.UpstreamTlsFailed(logger, route.Name, client, source, upstream, serverName, problem, elapsed.TotalMilliseconds);
        metrics.ConnectFailed(route.Name, ConnectError.Failed, elapsed);
    }

    /// <summary>
    /// After a connection closed: a side that spoke TLS where plaintext was expected, or the reverse,
    /// said in one line with the setting to change. True when there was such a mismatch (the close
    /// line is then not written: this one says it).
    /// </summary>
    public bool LogMismatch(ProxiedConnection live, PipeSocket client, PipeSocket upstream)
    {
        var route = live.RouteModel;
        var legs = live.Legs;
        if (client.PeerSpokeTls)
        {
            Log.ClientSpokeTls(logger, route.Name, legs.Client);
            return true;
        }

        if (client.ReceiveFailure is { } clientFailure && client.TlsLeg is not null)
        {
            Log.ListenerTlsFailed(logger, route.Name, legs.Client, clientFailure);
            return true;
        }

        if (upstream.PeerSpokeTls)
        {
            Log.UpstreamSpokeTls(logger, route.Name, legs.Client, legs.Upstream);
            return true;
        }

        if (upstream.TlsLeg is { } tls && upstream.ReceiveFailure is { } failure)
        {
            Log.UpstreamTlsFailed(logger, route.Name, legs.Client, legs.Source, legs.Upstream, tls.ServerName ?? "", failure, 0);
            return true;
        }

        if (route.Kafka is not null && upstream.TlsLeg is null && upstream.ReceiveEnd is ReceiveEnd.Fin or ReceiveEnd.Reset
            && upstream.BytesReceived == 0 && upstream.BytesSent > 0 && upstream.FinOrder is var upFin && (client.FinOrder == 0 || upFin < client.FinOrder))
        {
            Log.UpstreamClosedAtOnce(logger, route.Name, legs.Client, legs.Upstream);
            return true;
        }

        return false;
    }

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

    /// <summary>Moves a registered connection to other legs, its capture tap with it (see <see cref="CaptureHub.Switch"/>).</summary>
    public bool SwitchLegs(ProxiedConnection live, IConnectionLegs from, IConnectionLegs to) => captures.Switch(live, from, to);

    /// <summary>A tap armed for a pipe-path connection, before its client's first byte is read; null when no capture may want it.</summary>
    public Capture.ConnectionTap? Arm(ServedRoute served, IPEndPoint client, IPEndPoint listener) => captures.Arm(served, client, listener);

    /// <summary>Takes a closed connection out of the registry (which wakes a waiting drain).</summary>
    public void Remove(ProxiedConnection live) => registry.Remove(live);

    /// <summary>Says and counts a connection whose upstream is connected and which is in the registry.</summary>
    public void Opened(ProxiedConnection live, TimeSpan connectElapsed)
    {
        refusals.Connected(live.RouteModel);
        if (Writes(open: true))
        {
            Log.Opened(logger, live.Route, live.Client, live.Source, live.Upstream, connectElapsed.TotalMilliseconds);
        }

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
    public void LogClosed(ProxiedConnection live, CloseReason reason, double durationMs, string kafka)
    {
        if (Writes(open: false))
        {
            Log.Closed(logger, live.Route, live.Client, live.Source, live.Upstream, live.BytesToUpstream, live.BytesToClient, durationMs, reason.Describe(), kafka);
        }
    }

    /// <summary>Writes the summary of the open and close lines left out since the last one, if any were (each second, from the sweeper).</summary>
    public void LogSkipped()
    {
        if (_lines.TakeSkipped() is { } skipped)
        {
            Log.Skipped(logger, skipped.Opened, skipped.Closed, skipped.Over.TotalSeconds, ConnectionLines.PerSecond);
        }
    }

    /// <summary>Whether a connection's open or close line is written: always at Debug; at Information within <see cref="ConnectionLines"/>' budget.</summary>
    private bool Writes(bool open) =>
        logger.IsEnabled(LogLevel.Information) && (logger.IsEnabled(LogLevel.Debug) || _lines.TryTake(open));

    private static partial class Log
    {
        [LoggerMessage(200, LogLevel.Information, "{Route}: {Client} → {Source} → {Upstream} open (connect {ConnectMs:0.0} ms)")]
        public static partial void Opened(ILogger logger, string route, IPEndPoint client, IPEndPoint source, IPEndPoint upstream, double connectMs);

        [LoggerMessage(201, LogLevel.Information, "{Route}: {Client} → {Source} → {Upstream} closed: {Reason}; {BytesToUpstream} B up, {BytesToClient} B down, {DurationMs:0} ms{Kafka}")]
        public static partial void Closed(ILogger logger, string route, IPEndPoint client, IPEndPoint source, IPEndPoint upstream, long bytesToUpstream, long bytesToClient, double durationMs, string reason, string kafka);

        [LoggerMessage(209, LogLevel.Information, "{Opened} connection(s) opened and {Closed} closed in the last {Seconds:0.0} s were not logged one by one (more than {PerSecond} lines a second); /api/connections lists the open ones, --log-level debug logs each")]
        public static partial void Skipped(ILogger logger, long opened, long closed, double seconds, double perSecond);

        [LoggerMessage(230, LogLevel.Warning, "{Route}: {Client} closed: TLS on the listener: the client {Problem}")]
        public static partial void ListenerTlsFailed(ILogger logger, string route, IPEndPoint client, string problem);

        [LoggerMessage(231, LogLevel.Warning, "{Route}: {Client} → {Source} → {Upstream} closed: TLS to the upstream ({ServerName}): the upstream {Problem} (after {ElapsedMs:0} ms)")]
        public static partial void UpstreamTlsFailed(ILogger logger, string route, IPEndPoint client, IPEndPoint source, IPEndPoint upstream, string serverName, string problem, double elapsedMs);

        [LoggerMessage(232, LogLevel.Warning, "{Route}: {Client} closed: the client sent a TLS ClientHello, but the route listens in plaintext; set the client to plaintext (security.protocol=PLAINTEXT), or give the route ListenTls")]
        public static partial void ClientSpokeTls(ILogger logger, string route, IPEndPoint client);

        [LoggerMessage(233, LogLevel.Warning, "{Route}: {Client} closed: the upstream {Upstream} answered plaintext with TLS (an alert): it expects TLS; give the route \"Tls\": {{ \"Enabled\": true }} (with CaFile for a private CA)")]
        public static partial void UpstreamSpokeTls(ILogger logger, string route, IPEndPoint client, IPEndPoint upstream);

        [LoggerMessage(234, LogLevel.Warning, "{Route}: {Client} closed: the upstream {Upstream} closed at once without answering the first request: it probably expects TLS; give the route \"Tls\": {{ \"Enabled\": true }} (with CaFile for a private CA)")]
        public static partial void UpstreamClosedAtOnce(ILogger logger, string route, IPEndPoint client, IPEndPoint upstream);

        [LoggerMessage(202, LogLevel.Warning, "{Route}: {Client} closed: {Reason}: {Detail} (after {ElapsedMs:0} ms)")]
        public static partial void ConnectFailed(ILogger logger, string route, IPEndPoint client, string reason, string detail, double elapsedMs);
    }
}
