using System.Diagnostics;

namespace BindProxy.Forwarding;

/// <summary>
/// How many per-connection lines (open and close) are written at Information: a token bucket of
/// <see cref="Burst"/> lines, refilled at <see cref="PerSecond"/> a second. A person reads the
/// first connections of a run and a trickle after; a load test's thousands a second would only
/// flood the console, keep the log queue full and hold its events in memory until they are
/// written. Lines past the budget are counted, and <see cref="TakeSkipped"/> hands the counts to
/// one summary line. At Debug every line is written (the caller checks the level first).
/// </summary>
internal sealed class ConnectionLines(int burst = ConnectionLines.Burst, double perSecond = ConnectionLines.PerSecond, Func<long>? clock = null)
{
    /// <summary>Lines written at once before the rate applies.</summary>
    public const int Burst = 100;

    /// <summary>Lines a second after the burst.</summary>
    public const double PerSecond = 20;

    private readonly Lock _lock = new();
    private readonly Func<long> _clock = clock ?? Stopwatch.GetTimestamp;
    private double _tokens = burst;
    private long _refilledAt = (clock ?? Stopwatch.GetTimestamp)();
    private long _skippedOpen;
    private long _skippedClose;
    private long _skippedSince;

    /// <summary>True when the line may be written; false counts it as left out.</summary>
    public bool TryTake(bool open)
    {
        lock (_lock)
        {
            long now = _clock();
            _tokens = Math.Min(burst, _tokens + ((now - _refilledAt) * perSecond / Stopwatch.Frequency));
            _refilledAt = now;
            if (_tokens >= 1)
            {
                _tokens--;
                return true;
            }

            if (_skippedOpen + _skippedClose == 0)
            {
                _skippedSince = now;
            }

            if (open)
            {
                _skippedOpen++;
            }
            else
            {
                _skippedClose++;
            }

            return false;
        }
    }

    /// <summary>The lines left out since the last call, and over how long; null when none were.</summary>
    public (long Opened, long Closed, TimeSpan Over)? TakeSkipped()
    {
        lock (_lock)
        {
            if (_skippedOpen + _skippedClose == 0)
            {
                return null;
            }

            var result = (_skippedOpen, _skippedClose, Stopwatch.GetElapsedTime(_skippedSince, _clock()));
            (_skippedOpen, _skippedClose) = (0, 0);
            return result;
        }
    }
}
