using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using BindProxy.Bench.Measurement;

namespace BindProxy.Bench.Soak;

/// <summary>
/// Samples the proxy and the loads, writes each sample as a JSON line and a progress line, and
/// folds samples into report rows and whole-run figures. Latency histograms are merged, not
/// averaged, so a row's p99 is the p99 of every round trip in it.
/// </summary>
internal sealed class SoakMonitor(
    SoakSettings settings, ProxyProcess proxy, TcpLoad tcp, KafkaLoad kafka, ErrorCounts errors, StreamWriter jsonl, Action<string> progress)
{
    private LatencyHistogram _rowPing = new();
    private LatencyHistogram _rowProduce = new();
    private SoakSample? _previous;
    private SoakSample? _rowStart;

    public List<SoakSample> Samples { get; } = [];

    public List<SoakRow> Rows { get; } = [];

    /// <summary>Every round trip on the long-lived connections while traffic ran.</summary>
    public LatencyHistogram RunPing { get; } = new();

    public LatencyHistogram RunChurn { get; } = new();

    public LatencyHistogram RunProduce { get; } = new();

    /// <summary>
    /// Samples every <c>SampleEvery</c> until <c>Duration</c> has passed since <paramref name="trafficStarted"/>,
    /// then returns (the caller stops the traffic). Returns early, with the reason, if the proxy exits.
    /// </summary>
    public async Task<string?> RunAsync(long trafficStarted, CancellationToken cancellationToken)
    {
        var count = Math.Max(1, (int)Math.Round(settings.Duration / settings.SampleEvery));
        for (var n = 1; n <= count; n++)
        {
            var due = settings.SampleEvery * n - Stopwatch.GetElapsedTime(trafficStarted);
            if (due > TimeSpan.Zero)
            {
                try
                {
                    await Task.Delay(due, cancellationToken);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    await CloseOpenRowAsync();
                    return "interrupted";
                }
            }

            if (proxy.HasExited)
            {
                await CloseOpenRowAsync();
                return string.Create(CultureInfo.InvariantCulture, $"the proxy exited during the run, {Stopwatch.GetElapsedTime(trafficStarted).TotalSeconds:F0} s into it");
            }

            await SampleAsync("traffic", Stopwatch.GetElapsedTime(trafficStarted).TotalSeconds, last: n == count, cancellationToken);
        }

        return null;
    }

    /// <summary>Takes one sample; traffic samples also feed the report rows.</summary>
    public async Task<SoakSample> SampleAsync(string phase, double seconds, bool last, CancellationToken cancellationToken)
    {
        var status = proxy.Status();
        var active = await proxy.ActiveConnectionsAsync(cancellationToken);
        var ping = tcp.Ping.TakeInterval();
        var churn = tcp.Churn.TakeInterval();
        var produce = kafka.Produce.TakeInterval();
        var t = tcp.Counters;
        var k = kafka.Counters;
        var elapsed = _previous is null ? 0 : seconds - _previous.ElapsedS;
        var cpuPercent = _previous is null || elapsed <= 0 ? 0 : (status.CpuSeconds - _previous.CpuS) / elapsed * 100;

        var sample = new SoakSample(
            "soak-sample", phase, Math.Round(seconds, 1), DateTimeOffset.UtcNow,
            status.RssKb, status.Fds, status.Threads, Math.Round(status.CpuSeconds, 2), Math.Round(cpuPercent, 1),
            active?.Tcp, active?.Kafka,
            t.Connected, ping.Count, ping.Percentile(50), ping.Percentile(99), ping.MaxMicroseconds, t.PingFailed, t.Reconnects,
            t.ChurnOk, t.ChurnFailed,
            elapsed > 0 && _previous is not null ? Math.Round((t.ChurnOk - _previous.ChurnOk) / elapsed, 1) : 0,
            Milliseconds(churn.Percentile(99)), t.ChurnBehind,
            k.Ledger.Produced, k.Ledger.Acked, k.Ledger.Failed, k.Ledger.Consumed,
            Milliseconds(produce.Percentile(50)), Milliseconds(produce.Percentile(99)), k.Behind,
            k.LeaderMoves, k.Rebalances, errors.Total);

        Samples.Add(sample);
        await jsonl.WriteLineAsync(JsonSerializer.Serialize(sample, BenchJsonContext.Default.SoakSample).AsMemory(), cancellationToken);
        await jsonl.FlushAsync(cancellationToken);
        progress(Progress(sample));

        if (phase == "traffic")
        {
            RunPing.Merge(ping);
            RunChurn.Merge(churn);
            RunProduce.Merge(produce);
            _rowPing.Merge(ping);
            _rowProduce.Merge(produce);
            _rowStart ??= _previous;
            if (last || sample.ElapsedS - (_rowStart?.ElapsedS ?? 0) >= settings.RowEvery.TotalSeconds - (settings.SampleEvery.TotalSeconds / 2))
            {
                await CloseRowAsync(sample, cancellationToken);
            }
        }

        _previous = sample;
        return sample;
    }

    /// <summary>A run cut short still reports the part of a row it had.</summary>
    private async Task CloseOpenRowAsync()
    {
        if (_rowStart is not null && _previous is { Phase: "traffic" } last && last.ElapsedS > _rowStart.ElapsedS)
        {
            await CloseRowAsync(last, CancellationToken.None);
        }
    }

    private async Task CloseRowAsync(SoakSample end, CancellationToken cancellationToken)
    {
        var start = _rowStart!;
        var span = Math.Max(end.ElapsedS - start.ElapsedS, 0.001);

        // The first row starts at the idle sample, taken at 0 s with every traffic count still 0.
        var row = new SoakRow(
            "soak-row",
            start.ElapsedS,
            end.ElapsedS,
            end.RssKb,
            end.Fds,
            end.Threads,
            Math.Round((end.CpuS - start.CpuS) / span * 100, 1),
            _rowPing.Percentile(50),
            _rowPing.Percentile(99),
            _rowPing.MaxMicroseconds,
            Milliseconds(_rowProduce.Percentile(50)),
            Milliseconds(_rowProduce.Percentile(99)),
            Milliseconds(_rowProduce.MaxMicroseconds),
            Math.Round((end.ChurnOk - start.ChurnOk) / span, 1),
            Math.Round((end.Acked - start.Acked) / span, 1),
            Math.Round((end.Consumed - start.Consumed) / span, 1),
            end.Errors - start.Errors);
        Rows.Add(row);
        await jsonl.WriteLineAsync(JsonSerializer.Serialize(row, BenchJsonContext.Default.SoakRow).AsMemory(), cancellationToken);
        _rowPing = new LatencyHistogram();
        _rowProduce = new LatencyHistogram();
        _rowStart = end;
    }

    private static double Milliseconds(long microseconds) => Math.Round(microseconds / 1000.0, 2);

    private static string Progress(SoakSample s) => string.Create(CultureInfo.InvariantCulture,
        $"[{s.ElapsedS,5:F0} s] {s.Phase,-7} rss {s.RssKb / 1024.0:F1} MB  fds {s.Fds}  thr {s.Threads}  cpu {s.CpuPercent:F0}%  conns {s.ActiveTcp?.ToString(CultureInfo.InvariantCulture) ?? "?"}+{s.ActiveKafka?.ToString(CultureInfo.InvariantCulture) ?? "?"}  "
        + $"ping p50 {s.PingP50Us} µs p99 {s.PingP99Us / 1000:F1} ms  churn {s.ChurnPerS:F0}/s ({s.ChurnFailed} failed)  "
        + $"kafka acked {s.Acked} consumed {s.Consumed} p99 {s.ProduceP99Ms:F1} ms  errors {s.Errors}");
}
