using BindProxy.Configuration;
using BindProxy.Transport;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BindProxy.Forwarding;

/// <summary>
/// Once a second, closes connections that broke a time limit — no byte either way for a route's
/// <c>IdleTimeout</c>, (Kafka) a request left incomplete for <c>FrameTimeout</c>, a peer that took
/// none of the bytes still queued for it for the flush timeout after both sides ended — and
/// connections whose peer reset while the proxy was not reading it (backpressure), and has the
/// <see cref="StallWatchdog"/> look at each. One pass over the live connections replaces a timer
/// per connection.
/// </summary>
/// <param name="watchdog">None: stalls are not looked for (a sweeper made on its own, in tests).</param>
/// <param name="routes">Where the flush timeout is read; the default one when absent (a sweeper made on its own, in tests).</param>
internal sealed partial class ConnectionSweeper(ConnectionRegistry connections, RouteTable? routes = null, StallWatchdog? watchdog = null, ILogger<ConnectionSweeper>? logger = null, ConnectionLifecycle? lifecycle = null)
    : BackgroundService
{
    public static readonly TimeSpan Period = TimeSpan.FromSeconds(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Period);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                Sweep(Environment.TickCount64);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    internal void Sweep(long now)
    {
        lifecycle?.LogSkipped();
        var flushTimeout = routes?.Current.FlushTimeout ?? ProxyDefaults.FlushTimeout;
        foreach (var connection in connections.Snapshot())
        {
            if (connection.Legs.ResetWhilePaused() is { } reset)
            {
                connection.Abort(reset);
                continue;
            }

            var route = connection.RouteModel;
            long idle = connection.IdleMilliseconds(now);
            if (route.IdleTimeout is { } idleTimeout && idle > idleTimeout.TotalMilliseconds)
            {
                connection.Abort(CloseReason.IdleTimeout);
            }
            else if (connection.Legs.IsFlushing && idle > flushTimeout.TotalMilliseconds)
            {
                Log.FlushTimedOut(logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger<ConnectionSweeper>.Instance, connection.Route, connection.Client, connection.Source, connection.Upstream, connection.Legs.KernelQueued(), flushTimeout.TotalSeconds);
                connection.Abort(CloseReason.FlushTimeout);
            }
            else if (route.Kafka is { } kafka && connection.Kafka is { PartialSinceTicks: > 0 and var since } &&
                now - since > kafka.FrameTimeout.TotalMilliseconds)
            {
                connection.Abort(CloseReason.FrameStalled);
            }
            else
            {
                watchdog?.Check(connection, now);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(212, LogLevel.Warning, "{Route}: {Client} → {Source} → {Upstream}: both sides had ended, but {Queued} B sent to them stayed unacknowledged for {Seconds} s; reset (a peer that stopped reading)")]
        public static partial void FlushTimedOut(ILogger logger, string route, System.Net.IPEndPoint client, System.Net.IPEndPoint source, System.Net.IPEndPoint upstream, long queued, double seconds);
    }
}
