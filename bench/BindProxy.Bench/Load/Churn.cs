using System.Diagnostics;
using System.Net;
using BindProxy.Bench.Measurement;

namespace BindProxy.Bench.Load;

/// <summary>Connection churn: connect, one exchange, close, as fast as the workers can.</summary>
internal sealed record ChurnResult(
    string Test,
    string Target,
    int Concurrency,
    double DurationS,
    long Completed,
    int Failed,
    double ConnectionsPerSecond,
    double P50Ms,
    double P99Ms,
    SortedDictionary<string, int> Failures);

internal static class Churn
{
    private const int MaxSamplesPerWorker = 200_000;

    public static async Task<ChurnResult> RunAsync(
        IPEndPoint target, TimeSpan duration, int concurrency, int size, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var errors = new ErrorCounts();
        var workers = new Task<List<long>>[concurrency];
        var started = Stopwatch.GetTimestamp();
        var deadline = started + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        for (var w = 0; w < concurrency; w++)
        {
            var seed = w;
            workers[w] = Task.Run(() => WorkerAsync(target, size, seed, timeout, deadline, errors, cancellationToken), cancellationToken);
        }

        var perWorker = await Task.WhenAll(workers);
        var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var all = perWorker.SelectMany(x => x).ToArray();
        var p = Percentiles.Microseconds(all, 50, 99);
        return new ChurnResult(
            "churn", target.ToString(), concurrency, Math.Round(elapsed, 3), all.Length, errors.Total,
            Math.Round(all.Length / elapsed, 1), Math.Round(p[0] / 1000, 3), Math.Round(p[1] / 1000, 3), errors.Snapshot());
    }

    private static async Task<List<long>> WorkerAsync(
        IPEndPoint target, int size, int seed, TimeSpan timeout, long deadline, ErrorCounts errors, CancellationToken cancellationToken)
    {
        var samples = new List<long>(1024);
        var message = SocketIo.Pattern(size, seed);
        var reply = new byte[size];
        while (Stopwatch.GetTimestamp() < deadline && samples.Count < MaxSamplesPerWorker && !cancellationToken.IsCancellationRequested)
        {
            var start = Stopwatch.GetTimestamp();
            try
            {
                using var socket = await SocketIo.ConnectAsync(target, timeout, cancellationToken);
                var failure = await SocketIo.ExchangeAsync(socket, message, reply, timeout, cancellationToken);
                if (failure is not null)
                {
                    errors.Add(failure);
                    continue;
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e) when (e is System.Net.Sockets.SocketException or OperationCanceledException)
            {
                errors.Add(e);

                // A refused or exhausted connect fails in microseconds; do not spin on it. The loop
                // condition observes cancellation.
                await Task.Delay(1, CancellationToken.None).ConfigureAwait(false);
                continue;
            }

            samples.Add(Stopwatch.GetTimestamp() - start);
        }

        return samples;
    }
}
