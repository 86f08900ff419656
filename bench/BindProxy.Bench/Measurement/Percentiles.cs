using System.Diagnostics;

namespace BindProxy.Bench.Measurement;

/// <summary>Nearest-rank percentiles over recorded Stopwatch tick durations.</summary>
internal static class Percentiles
{
    /// <summary>Sorts <paramref name="ticks"/> in place and returns the given percentiles in microseconds.</summary>
    public static double[] Microseconds(Span<long> ticks, params ReadOnlySpan<double> percentiles)
    {
        ticks.Sort();
        var result = new double[percentiles.Length];
        if (ticks.Length == 0)
        {
            return result;
        }

        for (var i = 0; i < percentiles.Length; i++)
        {
            var rank = (int)Math.Ceiling(percentiles[i] / 100.0 * ticks.Length);
            var index = Math.Clamp(rank - 1, 0, ticks.Length - 1);
            result[i] = TicksToMicroseconds(ticks[index]);
        }

        return result;
    }

    public static double TicksToMicroseconds(long ticks) => ticks * 1_000_000.0 / Stopwatch.Frequency;
}
