using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using BindProxy.Bench.Measurement;
using BindProxy.Demo;

namespace BindProxy.Bench.Soak;

/// <summary>
/// The soak: a mock Kafka cluster in this process, BindProxy as a child process with a Tcp and a
/// Kafka route, mixed traffic at fixed rates for the whole duration while the proxy is sampled,
/// then every Kafka message checked, the proxy stopped with SIGTERM and the report written.
/// </summary>
internal static partial class SoakRun
{
    /// <summary>Exit codes: 0 passed; 1 something was lost, failed or logged as an error; 2 the run could not start.</summary>
    public const int Passed = 0;
    public const int Failed = 1;
    public const int CannotStart = 2;

    private const int LogExamples = 5;
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan ConsumeDrainTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan SettleAfterTraffic = TimeSpan.FromSeconds(3);

    public static async Task<int> RunAsync(SoakSettings settings, Action<string> progress, TextWriter report, CancellationToken cancellationToken)
    {
        var limit = FileLimits.RaiseToHard();
        var started = DateTimeOffset.UtcNow;
        var stamp = started.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
        var directory = Path.GetFullPath(settings.OutputDirectory);
        Directory.CreateDirectory(directory);
        string File(string suffix) => Path.Combine(directory, $"soak-{stamp}{suffix}");
        var jsonlPath = File(".jsonl");
        var proxyLogPath = File(".proxy.log");

        var loadError = MockCluster.EnsureNativeLibrary();
        if (loadError is not null)
        {
            progress("soak: cannot start the mock Kafka cluster: " + loadError);
            return CannotStart;
        }

        var errors = new ErrorCounts();
        using var clientLog = new ClientLog(File(".kafka.log"));
        using var kafka = KafkaLoad.Create(settings, errors, clientLog);
        var configPath = File(".proxy.json");
        await System.IO.File.WriteAllTextAsync(configPath, ProxyProcess.Configuration(settings, kafka.Bootstrap, proxyLogPath), cancellationToken);

        progress($"soak: mock cluster {kafka.ClusterAddresses}; starting {settings.ProxyDll} --config {configPath}");
        using var proxy = ProxyProcess.Start(settings, configPath, File(".proxy.out"));
        if (!await proxy.WaitReadyAsync(settings, StartTimeout, cancellationToken))
        {
            progress($"soak: the proxy did not start (routes {settings.TcpListen}, {settings.KafkaListen}, admin {settings.Admin}); see {File(".proxy.out")} and {proxyLogPath}");
            return CannotStart;
        }

        progress($"soak: proxy pid {proxy.Pid} ready; {settings.Consumers} consumer(s) joining {SoakSettings.Group}");
        if (!await kafka.StartConsumersAsync(StartTimeout, cancellationToken))
        {
            progress($"soak: the consumer group did not settle within {StartTimeout.TotalSeconds:F0} s; see {clientLog.Path}");
            return CannotStart;
        }

        var tcp = new TcpLoad(settings, errors);
        await using var jsonl = new StreamWriter(jsonlPath);
        var monitor = new SoakMonitor(settings, proxy, tcp, kafka, errors, jsonl, progress);
        var idle = await monitor.SampleAsync("idle", 0, last: false, cancellationToken);

        progress($"soak: traffic for {SoakReport.Readable(settings.Duration)}, a sample every {SoakReport.Readable(settings.SampleEvery)}, a report row every {SoakReport.Readable(settings.RowEvery)}");
        var failures = new List<string>();
        var trafficStarted = Stopwatch.GetTimestamp();
        using var stopTraffic = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var tcpRun = tcp.RunAsync(stopTraffic.Token);
        var kafkaRun = kafka.RunAsync(stopTraffic.Token);
        if (await monitor.RunAsync(trafficStarted, cancellationToken) is { } stoppedEarly)
        {
            failures.Add(stoppedEarly);
        }

        var trafficSeconds = Stopwatch.GetElapsedTime(trafficStarted).TotalSeconds;
        await stopTraffic.CancelAsync();
        await Task.WhenAll(tcpRun, kafkaRun);
        progress("soak: traffic stopped; flushing the producer and waiting for the consumers");
        var verdict = await kafka.FinishAsync(ConsumeDrainTimeout);
        failures.AddRange(verdict.Failures());

        await Task.Delay(SettleAfterTraffic, CancellationToken.None);
        var after = proxy.HasExited ? null : await monitor.SampleAsync("after", Stopwatch.GetElapsedTime(trafficStarted).TotalSeconds, last: false, CancellationToken.None);

        var (exitCode, stopSeconds, killed) = await proxy.StopAsync(SoakSettings.DrainTimeout + TimeSpan.FromSeconds(15));
        if (killed || exitCode != 0)
        {
            failures.Add(killed ? "the proxy did not exit after SIGTERM and was killed" : $"the proxy exited with code {exitCode} after SIGTERM");
        }

        var proxyLog = ScanLog(proxyLogPath);
        if (proxyLog.Errors > 0)
        {
            failures.Add($"the proxy logged {proxyLog.Errors} error(s)");
        }

        if (errors.Total > 0)
        {
            failures.Add($"{errors.Total} client error(s): {string.Join(", ", errors.Snapshot().Select(e => $"{e.Key} ×{e.Value}"))}");
        }

        var summary = Summarize(settings, started, trafficSeconds, failures, limit, idle, after, monitor, tcp.Counters, verdict, errors,
            proxyLog, exitCode, stopSeconds, clientLog, jsonlPath, proxyLogPath);
        await jsonl.WriteLineAsync(JsonSerializer.Serialize(summary, BenchJsonContext.Default.SoakSummary));
        await jsonl.FlushAsync(CancellationToken.None);

        var markdown = SoakReport.Build($"BindProxy soak {stamp}", summary, monitor.Rows);
        var mdPath = File(".md");
        await System.IO.File.WriteAllTextAsync(mdPath, markdown, CancellationToken.None);
        await report.WriteAsync(markdown);
        await report.WriteLineAsync();
        await report.WriteLineAsync($"written: {mdPath}");
        return summary.Passed ? Passed : Failed;
    }

    private static SoakSummary Summarize(
        SoakSettings settings,
        DateTimeOffset started,
        double trafficSeconds,
        List<string> failures,
        FileLimit limit,
        SoakSample idle,
        SoakSample? after,
        SoakMonitor monitor,
        TcpCounters tcp,
        KafkaVerdict verdict,
        ErrorCounts errors,
        LogScan proxyLog,
        int? exitCode,
        double stopSeconds,
        ClientLog clientLog,
        string jsonlPath,
        string proxyLogPath)
    {
        var traffic = monitor.Samples.Where(s => s.Phase == "traffic").ToList();
        if (traffic.Count == 0)
        {
            traffic.Add(idle);
        }

        Extent Of(Func<SoakSample, long> value) => new(
            value(idle), value(traffic[0]), value(traffic[^1]), traffic.Min(value), traffic.Max(value), after is null ? -1 : value(after));

        var k = verdict.Counters.Ledger;
        var last = traffic[^1];
        var leaderMoves = settings.LeaderMoveEvery is { } every && every > TimeSpan.Zero ? $"every partition's leader moved every {SoakReport.Readable(every)}" : "leaders never moved";
        var load = string.Create(CultureInfo.InvariantCulture,
            $"Tcp route (echo server, source {SoakSettings.TcpSource}): {settings.Connections} long-lived connections each exchanging {settings.MessageSize} B every {SoakReport.Readable(settings.PingEvery)}, "
            + $"churn of {settings.ChurnRate} conn/s (connect, {settings.MessageSize} B exchange, close). "
            + $"Kafka route (librdkafka mock cluster of {SoakSettings.Brokers} brokers, source {SoakSettings.KafkaSource}): idempotent producer (acks=all, linger 5 ms) "
            + $"at {settings.ProduceRate} msg/s of {SoakSettings.ValueSize} B to {SoakSettings.Partitions} partitions, a consumer group of {settings.Consumers}; {leaderMoves}");
        return new SoakSummary(
            "soak-summary",
            started,
            Math.Round(trafficSeconds, 1),
            failures.Count == 0,
            [.. failures],
            load,
            Machine(),
            settings.Commit,
            limit.Soft,
            limit.Hard,
            Of(s => s.RssKb),
            Of(s => s.Fds),
            Of(s => s.Threads),
            Math.Round(last.CpuS - idle.CpuS, 1),
            tcp.PingOk,
            tcp.PingFailed,
            tcp.Reconnects,
            monitor.RunPing.Percentile(50),
            monitor.RunPing.Percentile(99),
            monitor.RunPing.MaxMicroseconds,
            tcp.ChurnOk,
            tcp.ChurnFailed,
            tcp.ChurnBehind,
            Math.Round(tcp.ChurnOk / Math.Max(trafficSeconds, 0.001), 1),
            Math.Round(monitor.RunChurn.Percentile(99) / 1000.0, 2),
            k.Produced,
            k.Acked,
            k.Failed,
            verdict.Counters.Behind,
            k.Consumed,
            k.Deliveries,
            verdict.Check.Lost,
            verdict.Check.Duplicated,
            verdict.Check.Misplaced,
            verdict.Check.Redelivered,
            k.Corrupt,
            Math.Round(monitor.RunProduce.Percentile(50) / 1000.0, 2),
            Math.Round(monitor.RunProduce.Percentile(99) / 1000.0, 2),
            Math.Round(monitor.RunProduce.MaxMicroseconds / 1000.0, 2),
            verdict.Counters.LeaderMoves,
            verdict.Counters.Rebalances,
            errors.Snapshot(),
            proxyLog.Warnings,
            proxyLog.Errors,
            [.. proxyLog.Examples],
            exitCode,
            Math.Round(stopSeconds, 1),
            clientLog.Warnings,
            jsonlPath,
            proxyLogPath,
            clientLog.Path);
    }

    private static string Machine()
    {
        var model = "?";
        var kernel = "?";
        try
        {
            model = System.IO.File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "?";
            kernel = System.IO.File.ReadAllText("/proc/sys/kernel/osrelease").Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Not Linux, or /proc hidden: the report says "?".
        }

        return $"{Environment.ProcessorCount} cores, {model}, kernel {kernel}, {RuntimeInformation.FrameworkDescription}";
    }

    /// <summary>Counts the proxy log's warning and error lines and keeps the first few distinct ones.</summary>
    private static LogScan ScanLog(string path)
    {
        int warnings = 0, errors = 0;
        var examples = new List<string>();
        if (!System.IO.File.Exists(path))
        {
            return new LogScan(0, 0, examples);
        }

        foreach (var line in System.IO.File.ReadLines(path))
        {
            var match = LogLine().Match(line);
            if (!match.Success)
            {
                continue; // an exception's stack trace, part of the line before
            }

            if (match.Groups["level"].Value == "WRN")
            {
                warnings++;
            }
            else
            {
                errors++;
            }

            var text = match.Groups["level"].Value + " " + match.Groups["text"].Value;
            if (examples.Count < LogExamples && !examples.Contains(text))
            {
                examples.Add(text.Length > 240 ? text[..240] + "…" : text);
            }
        }

        return new LogScan(warnings, errors, examples);
    }

    [GeneratedRegex(@"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (?<level>WRN|ERR|FTL) (?<text>.*)$")]
    private static partial Regex LogLine();

    private sealed record LogScan(int Warnings, int Errors, List<string> Examples);
}
