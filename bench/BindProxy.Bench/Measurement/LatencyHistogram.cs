using System.Numerics;

namespace BindProxy.Bench.Measurement;

/// <summary>
/// A log-linear histogram of microsecond values: exact below 32 µs, then 32 linear buckets per
/// power of two, so a percentile read from it is the upper edge of a bucket at most 1/32 (3%)
/// wider than the values in it. Fixed size whatever the number of samples, and mergeable: an
/// hour of samples summarises per interval, per report row and for the whole run alike.
/// Not thread-safe; <see cref="LatencyRecorder"/> guards the one being filled.
/// </summary>
internal sealed class LatencyHistogram
{
    private const int SubBucketBits = 5;
    private const int SubBuckets = 1 << SubBucketBits;

    // Values up to 2^45 µs (about a year) have a bucket; anything larger lands in the last one.
    private const int Buckets = (45 - SubBucketBits + 1) * SubBuckets;

    private readonly long[] _counts = new long[Buckets];

    public long Count { get; private set; }

    public long MaxMicroseconds { get; private set; }

    public void Add(long microseconds)
    {
        var value = Math.Max(microseconds, 0);
        _counts[Index(value)]++;
        Count++;
        MaxMicroseconds = Math.Max(MaxMicroseconds, value);
    }

    public void Merge(LatencyHistogram other)
    {
        for (var i = 0; i < Buckets; i++)
        {
            _counts[i] += other._counts[i];
        }

        Count += other.Count;
        MaxMicroseconds = Math.Max(MaxMicroseconds, other.MaxMicroseconds);
    }

    /// <summary>Nearest-rank percentile in µs (the upper edge of its bucket, never above the maximum); 0 when empty.</summary>
    public long Percentile(double percentile)
    {
        if (Count == 0)
        {
            return 0;
        }

        var rank = Math.Clamp((long)Math.Ceiling(percentile / 100.0 * Count), 1, Count);
        long seen = 0;
        for (var i = 0; i < Buckets; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
            {
                return Math.Min(UpperEdge(i), MaxMicroseconds);
            }
        }

        return MaxMicroseconds;
    }

    private static int Index(long value)
    {
        if (value < SubBuckets)
        {
            return (int)value;
        }

        // value has its top bit at `exponent`; keep the SubBucketBits bits below it.
        var exponent = 63 - BitOperations.LeadingZeroCount((ulong)value);
        var shift = exponent - SubBucketBits;
        var sub = (int)(value >> shift) - SubBuckets;
        return Math.Min(((shift + 1) * SubBuckets) + sub, Buckets - 1);
    }

    private static long UpperEdge(int index)
    {
        if (index < SubBuckets)
        {
            return index;
        }

        var shift = (index / SubBuckets) - 1;
        var sub = index % SubBuckets;
        return ((long)(SubBuckets + sub + 1) << shift) - 1;
    }
}

/// <summary>Collects latencies from many threads into the current interval's histogram.</summary>
internal sealed class LatencyRecorder
{
    private readonly Lock _lock = new();
    private LatencyHistogram _interval = new();

    public void RecordTicks(long stopwatchTicks) => RecordMicroseconds((long)Percentiles.TicksToMicroseconds(stopwatchTicks));

    public void RecordMicroseconds(long microseconds)
    {
        lock (_lock)
        {
            _interval.Add(microseconds);
        }
    }

    /// <summary>Returns what was recorded since the last call and starts a new interval.</summary>
    public LatencyHistogram TakeInterval()
    {
        lock (_lock)
        {
            var taken = _interval;
            _interval = new LatencyHistogram();
            return taken;
        }
    }
}
