using BindProxy.Configuration;
using BindProxy.Transport;
using Microsoft.Extensions.Hosting;

namespace BindProxy.Forwarding;

/// <summary>
/// Once a second, closes connections that broke a route's time limits — no byte either way for
/// <c>IdleTimeout</c>, or (Kafka) a request left incomplete for <c>FrameTimeout</c> — and
/// connections whose peer reset while the proxy was not reading it (backpressure). One pass over
/// the live connections replaces a timer per connection.
/// </summary>
internal sealed class ConnectionSweeper(ConnectionRegistry connections) : BackgroundService
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
            else if (route.Kafka is { } kafka && connection.Kafka is { PartialSinceTicks: > 0 and var since } &&
                now - since > kafka.FrameTimeout.TotalMilliseconds)
            {
                connection.Abort(CloseReason.FrameStalled);
            }
        }
    }
}
