using System.Diagnostics.Metrics;
using BindProxy.Forwarding;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Serilog.Sinks.Async;

namespace BindProxy.Hosting;

/// <summary>
/// The bounded queue in front of the log's sinks. A log call only enqueues: the console (or a file,
/// or a pipe someone reads slowly) is written by the queue's own thread, so no relay loop, accept
/// or connection set-up ever waits for it. When the queue is full, events are dropped and counted
/// rather than waited for.
/// </summary>
internal sealed class LogQueue : IAsyncLogEventSinkMonitor
{
    /// <summary>Events the queue holds at most (each a few hundred bytes).</summary>
    public const int Capacity = 10_000;

    private IAsyncLogEventSinkInspector? _inspector;

    /// <summary>Events dropped so far because the queue was full.</summary>
    public long Dropped => _inspector?.DroppedMessagesCount ?? 0;

    /// <summary>Events waiting to be written now.</summary>
    public int Waiting => _inspector?.Count ?? 0;

    public void StartMonitoring(IAsyncLogEventSinkInspector inspector) => _inspector = inspector;

    public void StopMonitoring(IAsyncLogEventSinkInspector inspector) => _inspector = null;
}

/// <summary>
/// Exports the log queue's drops (<c>bindproxy_log_events_dropped_total</c>) and says, at most every
/// 10 s, how many events were dropped since the last such line.
/// </summary>
internal sealed partial class LogQueueReporter(LogQueue queue, IMeterFactory meters, ILogger<LogQueueReporter> logger) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        meters.Create(ProxyMetrics.MeterName).CreateObservableCounter("bindproxy.log.events.dropped", () => queue.Dropped, "{event}",
            "Log events dropped because the log's queue was full (its sink, such as a console read slowly, did not keep up); forwarding never waits for the log");
        long reported = 0;
        using var timer = new PeriodicTimer(Interval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                long dropped = queue.Dropped;
                if (dropped > reported)
                {
                    Log.Dropped(logger, dropped - reported, Interval.TotalSeconds, LogQueue.Capacity);
                    reported = dropped;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static partial class Log
    {
        [LoggerMessage(6, LogLevel.Warning, "Log: {Dropped} event(s) dropped in the last {IntervalSeconds} s because the log's output did not keep up (its queue holds {Capacity}); forwarding did not wait for it")]
        public static partial void Dropped(ILogger logger, long dropped, double intervalSeconds, int capacity);
    }
}
