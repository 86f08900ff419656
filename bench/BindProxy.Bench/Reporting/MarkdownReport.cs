using System.Globalization;
using System.Text;
using System.Text.Json;

namespace BindProxy.Bench.Reporting;

/// <summary>
/// Turns a results file into markdown tables. Every figure is the median over the interleaved
/// rounds; latency "added" is taken per round against the direct run of the same round, then the
/// median of those differences is reported. Ratios compare each contender with HAProxy.
/// </summary>
internal sealed class MarkdownReport(ResultSet results, string baseline)
{
    private const string Direct = "direct";

    // Idle-connection runs: after a warm-up (the marginal cost of a connection) and from a fresh process.
    private const string Warmed = "hold";
    private const string Fresh = "hold-fresh";

    private static readonly (int Streams, bool Reverse, string Title)[] ThroughputModes =
    [
        (1, false, "1 stream"),
        (1, true, "1 stream -R"),
        (8, false, "8 streams"),
        (8, true, "8 streams -R"),
    ];

    private readonly List<string> _contenders = results.Contenders();

    public string Build(string title)
    {
        var md = new StringBuilder();
        md.Append(CultureInfo.InvariantCulture, $"# {title}\n\n");
        AppendEnvironment(md);
        AppendSummary(md);
        AppendThroughput(md);
        AppendLatency(md);
        AppendChurn(md);
        AppendFairness(md);
        AppendHold(md);
        AppendMaxConn(md);
        if (results.Problems.Count > 0)
        {
            md.Append("\nUnreadable result lines: ").Append(string.Join("; ", results.Problems)).Append('\n');
        }

        return md.ToString();
    }

    private void AppendEnvironment(StringBuilder md)
    {
        foreach (var env in results.Records("env"))
        {
            md.Append(CultureInfo.InvariantCulture, $"- {ResultSet.Text(env, "name")}: {ResultSet.Text(env, "value")}\n");
        }

        foreach (var note in results.Records("note"))
        {
            md.Append(CultureInfo.InvariantCulture, $"- note: {ResultSet.Text(note, "value")}\n");
        }

        md.Append('\n');
    }

    private void AppendSummary(StringBuilder md)
    {
        md.Append(CultureInfo.InvariantCulture, $"## Summary (value, and ×{baseline} in brackets)\n\n");
        md.Append("| contender | Gbit/s 1 stream | Gbit/s 8 streams | CPU s/GB | added p50 µs | added p99 µs | churn conn/s | ping p99 µs beside bulk | RSS KB/idle conn fresh | RSS KB/idle conn warmed | PSS KB/idle conn warmed |\n");
        md.Append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        foreach (var c in _contenders)
        {
            md.Append(CultureInfo.InvariantCulture, $"| {c} | {WithRatio(c, x => Throughput(x, 1, false), "F2")} | {WithRatio(c, x => Throughput(x, 8, false), "F2")} | {WithRatio(c, CpuPerGb, "F2")} | {WithRatio(c, x => AddedLatency(x, "p50_us"), "F1")} | {WithRatio(c, x => AddedLatency(x, "p99_us"), "F1")} | {WithRatio(c, ChurnRate, "F0")} | {WithRatio(c, x => FairnessMedian(x, "p99_us"), "F0")} | {WithRatio(c, x => HoldMedian(Fresh, x, "rss_per_conn_kb"), "F1")} | {WithRatio(c, x => HoldMedian(Warmed, x, "rss_per_conn_kb"), "F1")} | {WithRatio(c, x => HoldMedian(Warmed, x, "pss_per_conn_kb"), "F1")} |\n");
        }

        md.Append("\nHigher is better for Gbit/s and conn/s; lower is better for CPU, latency and memory.\n\n");
    }

    private void AppendThroughput(StringBuilder md)
    {
        var records = results.Records("iperf").ToList();
        if (records.Count == 0)
        {
            return;
        }

        md.Append(CultureInfo.InvariantCulture, $"## Throughput (iperf3, Gbit/s received, median of {Rounds(records)} rounds)\n\n");
        md.Append("| contender |");
        foreach (var mode in ThroughputModes)
        {
            md.Append(' ').Append(mode.Title).Append(" |");
        }

        md.Append(" CPU s/GB | iperf errors |\n|---|");
        md.Append(string.Concat(Enumerable.Repeat("---:|", ThroughputModes.Length + 2))).Append('\n');
        foreach (var c in _contenders)
        {
            md.Append("| ").Append(c).Append(" |");
            foreach (var (streams, reverse, _) in ThroughputModes)
            {
                md.Append(' ').Append(WithRatio(c, x => Throughput(x, streams, reverse), "F2")).Append(" |");
            }

            var errors = Of(records, c).Count(r => ResultSet.Text(r.GetProperty("result"), "error") is not null);
            md.Append(' ').Append(WithRatio(c, CpuPerGb, "F2")).Append(CultureInfo.InvariantCulture, $" | {errors} |\n");
        }

        md.Append("\nCPU s/GB: user+system CPU seconds of the whole proxy process tree per 10^9 bytes received by iperf3, median over every throughput run.\n\n");
    }

    private void AppendLatency(StringBuilder md)
    {
        var records = results.Records("pingpong").ToList();
        if (records.Count == 0)
        {
            return;
        }

        var size = ResultSet.Number(records[0], "result", "size") ?? 0;
        md.Append(CultureInfo.InvariantCulture, $"## Request/response latency ({size:F0}-byte ping-pong, µs, median of {Rounds(records)} rounds)\n\n");
        md.Append("| contender | p50 | p99 | p99.9 | added p50 | added p99 | added p99.9 | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
        foreach (var c in _contenders)
        {
            var mine = Of(records, c).ToList();
            if (mine.Count == 0)
            {
                continue;
            }

            var errors = mine.Count(r => ResultSet.Text(r.GetProperty("result"), "error") is not null);
            md.Append(CultureInfo.InvariantCulture, $"| {c} | {Fmt(Median(mine, "p50_us"), "F1")} | {Fmt(Median(mine, "p99_us"), "F1")} | {Fmt(Median(mine, "p999_us"), "F1")} ");
            foreach (var key in new[] { "p50_us", "p99_us", "p999_us" })
            {
                md.Append("| ").Append(c == Direct ? "—" : WithRatio(c, x => AddedLatency(x, key), "F1")).Append(' ');
            }

            md.Append(CultureInfo.InvariantCulture, $"| {errors} |\n");
        }

        md.Append("\nadded = contender minus direct in the same round; the ratio compares added latency with HAProxy's.\n\n");
    }

    private void AppendChurn(StringBuilder md)
    {
        var records = results.Records("churn").ToList();
        if (records.Count == 0)
        {
            return;
        }

        var concurrency = ResultSet.Number(records[0], "result", "concurrency") ?? 0;
        md.Append(CultureInfo.InvariantCulture, $"## Connection churn (connect, one exchange, close; {concurrency:F0} workers; median of {Rounds(records)} rounds)\n\n");
        md.Append("| contender | conn/s | p50 ms | p99 ms | failed (all rounds) | failure reasons |\n|---|---:|---:|---:|---:|---|\n");
        foreach (var c in _contenders)
        {
            var mine = Of(records, c).ToList();
            if (mine.Count == 0)
            {
                continue;
            }

            md.Append(CultureInfo.InvariantCulture, $"| {c} | {WithRatio(c, ChurnRate, "F0")} | {Fmt(Median(mine, "p50_ms"), "F3")} | {Fmt(Median(mine, "p99_ms"), "F3")} | {Sum(mine, "failed"):F0} | {Reasons(mine)} |\n");
        }

        md.Append('\n');
    }

    private void AppendFairness(StringBuilder md)
    {
        var records = results.Records("fairness").ToList();
        if (records.Count == 0)
        {
            return;
        }

        var first = records[0];
        var n = (string name) => ResultSet.Number(first, "result", name) ?? 0;
        md.Append(CultureInfo.InvariantCulture, $"## Fairness ({n("pingers"):F0} connections each pinging {n("size"):F0} B every {n("interval_ms"):F0} ms beside {n("bulk"):F0} bulk echo streams; round trip µs, median of {Rounds(records)} rounds)\n\n");
        md.Append("| contender | ping p50 | ping p90 | ping p99 | ping p99.9 | ping max | pings | bulk Gbit/s | failed (all rounds) | failure reasons |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
        foreach (var c in _contenders)
        {
            var mine = Of(records, c).ToList();
            if (mine.Count == 0)
            {
                continue;
            }

            md.Append(CultureInfo.InvariantCulture, $"| {c} | {WithRatio(c, x => FairnessMedian(x, "p50_us"), "F0")} | {Fmt(Median(mine, "p90_us"), "F0")} | {WithRatio(c, x => FairnessMedian(x, "p99_us"), "F0")} | {WithRatio(c, x => FairnessMedian(x, "p999_us"), "F0")} | {Fmt(Median(mine, "max_us"), "F0")} | {Fmt(Median(mine, "pings"), "F0")} | {Fmt(Median(mine, "bulk_gbps"), "F2")} | {Sum(mine, "failed"):F0} | {Reasons(mine)} |\n");
        }

        md.Append("\nThe bulk streams send and read their echo flat out while the pingers measure; a proxy that serves one ready connection until it runs dry shows it in the pingers' tail. The ratio compares with HAProxy's figure in the same run.\n\n");
    }

    private void AppendHold(StringBuilder md)
    {
        var warmed = results.Records(Warmed).ToList();
        var fresh = results.Records(Fresh).ToList();
        if (warmed.Count == 0 && fresh.Count == 0)
        {
            return;
        }

        var all = warmed.Concat(fresh).ToList();
        var requested = ResultSet.Number(all[0], "result", "requested") ?? 0;
        md.Append(CultureInfo.InvariantCulture, $"## Idle connections ({requested:F0} held through each proxy, each exchanging one 16-byte echo; a fresh proxy process for every run, median of {Rounds(all)} rounds)\n\n");
        md.Append("| contender | verified fresh / warmed | open ms fresh / warmed | RSS KB/conn fresh | RSS KB/conn warmed | PSS KB/conn fresh | PSS KB/conn warmed | proxy RSS MB at start | proxy RSS MB after fresh | proxy RSS MB after warmed | processes | failed | failure reasons |\n");
        md.Append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
        foreach (var c in _contenders)
        {
            var mineWarmed = Of(warmed, c).ToList();
            var mineFresh = Of(fresh, c).ToList();
            if (mineWarmed.Count == 0 && mineFresh.Count == 0)
            {
                continue;
            }

            var proxy = c != Direct;
            md.Append(CultureInfo.InvariantCulture, $"| {c} | {Fmt(Median(mineFresh, "verified"), "F0")} / {Fmt(Median(mineWarmed, "verified"), "F0")} | {Fmt(Median(mineFresh, "open_ms"), "F0")} / {Fmt(Median(mineWarmed, "open_ms"), "F0")} | {WithRatio(c, x => HoldMedian(Fresh, x, "rss_per_conn_kb"), "F1")} | {WithRatio(c, x => HoldMedian(Warmed, x, "rss_per_conn_kb"), "F1")} | {WithRatio(c, x => HoldMedian(Fresh, x, "pss_per_conn_kb"), "F1")} | {WithRatio(c, x => HoldMedian(Warmed, x, "pss_per_conn_kb"), "F1")} | {(proxy ? Fmt(Median(mineFresh, "rss_before_kb") / 1024, "F1") : "—")} | {(proxy ? Fmt(Median(mineFresh, "rss_end_kb") / 1024, "F1") : "—")} | {(proxy ? Fmt(Median(mineWarmed, "rss_end_kb") / 1024, "F1") : "—")} | {(proxy ? Fmt(Median(mineWarmed.Concat(mineFresh), "proxy_processes"), "F0") : "—")} | {Sum(mineWarmed.Concat(mineFresh), "failed"):F0} | {Reasons(mineWarmed.Concat(mineFresh))} |\n");
        }

        md.Append("\nKB/conn = (proxy tree memory after the hold − before opening) / verified connections. *Fresh*: the connections are the first the proxy process ever serves, so the figure includes what first use costs (code compiled on first use, threads started under the connect burst, the garbage collector's heap growing to its budget), as a user starting the proxy for a load test pays it. *Warmed*: 500 connections opened, echoed and closed first, then 1 s, before the baseline is read: the marginal cost of a connection. RSS at start is the fresh run's baseline, read 0.5 s after the proxy listens. RSS sums every process's resident set (socat's forked children share pages, so its RSS overstates); PSS splits shared pages.\n\n");
    }

    private void AppendMaxConn(StringBuilder md)
    {
        var records = results.Records("maxconn").ToList();
        if (records.Count == 0)
        {
            return;
        }

        md.Append("## Most connections one proxy holds (more requested than its file limit allows)\n\n");
        md.Append("| contender | requested | established | verified (echo ok) | held at end | proxy RSS MB | processes | client nofile | failure reasons |\n|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
        foreach (var r in records)
        {
            var c = ResultSet.Text(r, "contender");
            var n = (string name) => ResultSet.Number(r, "result", name);
            md.Append(CultureInfo.InvariantCulture, $"| {c} | {Fmt(n("requested"), "F0")} | {Fmt(n("established"), "F0")} | **{Fmt(n("verified"), "F0")}** | {Fmt(n("held_at_end"), "F0")} | {Fmt(n("rss_end_kb") / 1024, "F1")} | {Fmt(n("proxy_processes"), "F0")} | {Fmt(n("nofile_soft"), "F0")} | {Reasons([r])} |\n");
        }

        md.Append("\nEach proxied connection costs the proxy two descriptors, so one process under a 20000 limit tops out just under 10000; nginx spreads connections over its worker processes, each with its own limit.\n\n");
    }

    // ---- figures per contender -------------------------------------------------------------

    private double? Throughput(string contender, int streams, bool reverse) =>
        MedianOf(Of(results.Records("iperf"), contender)
            .Where(r => ResultSet.Number(r, "streams") == streams && ResultSet.Flag(r, "reverse") == reverse)
            .Select(r => ResultSet.Number(r, "result", "end", "sum_received", "bits_per_second") / 1e9));

    private double? CpuPerGb(string contender) =>
        contender == Direct
            ? null
            : MedianOf(Of(results.Records("iperf"), contender).Select(r =>
            {
                var before = ResultSet.Number(r, "cpu_before", "cpu_seconds");
                var after = ResultSet.Number(r, "cpu_after", "cpu_seconds");
                var bytes = ResultSet.Number(r, "result", "end", "sum_received", "bytes");
                return before is null || after is null || bytes is null or <= 0 ? null : (after - before) / (bytes / 1e9);
            }));

    private double? AddedLatency(string contender, string key)
    {
        if (contender == Direct)
        {
            return null;
        }

        var records = results.Records("pingpong").ToList();
        var direct = Of(records, Direct).Where(Ok).ToDictionary(r => ResultSet.Number(r, "round") ?? -1, r => ResultSet.Number(r, "result", key));
        return MedianOf(Of(records, contender).Where(Ok).Select(r =>
            direct.TryGetValue(ResultSet.Number(r, "round") ?? -1, out var d) && d is not null
                ? ResultSet.Number(r, "result", key) - d
                : null));

        static bool Ok(JsonElement r) => ResultSet.Text(r.GetProperty("result"), "error") is null;
    }

    private double? ChurnRate(string contender) => Median(Of(results.Records("churn"), contender), "connections_per_second");

    private double? HoldMedian(string test, string contender, string key) => Median(Of(results.Records(test), contender), key);

    private double? FairnessMedian(string contender, string key) => Median(Of(results.Records("fairness"), contender), key);

    private string WithRatio(string contender, Func<string, double?> figure, string format)
    {
        var value = figure(contender);
        if (value is null)
        {
            return "—";
        }

        var text = value.Value.ToString(format, CultureInfo.InvariantCulture);
        // A ratio of differences that noise pushed to zero or below says nothing; leave it out.
        if (contender == baseline || figure(baseline) is not { } reference || reference <= 1e-9 || value.Value < 0)
        {
            return text;
        }

        return string.Create(CultureInfo.InvariantCulture, $"{text} (×{value.Value / reference:F2})");
    }

    // ---- helpers ---------------------------------------------------------------------------

    private static IEnumerable<JsonElement> Of(IEnumerable<JsonElement> records, string contender) =>
        records.Where(r => ResultSet.Text(r, "contender") == contender);

    private static double? Median(IEnumerable<JsonElement> records, string key) =>
        MedianOf(records.Select(r => ResultSet.Number(r, "result", key)));

    private static double Sum(IEnumerable<JsonElement> records, string key) =>
        records.Sum(r => ResultSet.Number(r, "result", key) ?? 0);

    /// <summary>The median of the values present; the mean of the middle two for an even count.</summary>
    internal static double? MedianOf(IEnumerable<double?> values)
    {
        var sorted = values.OfType<double>().Where(v => !double.IsNaN(v)).Order().ToArray();
        if (sorted.Length == 0)
        {
            return null;
        }

        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    private static int Rounds(IEnumerable<JsonElement> records) =>
        records.Select(r => ResultSet.Number(r, "round")).Distinct().Count();

    private static string Fmt(double? value, string format) =>
        value is null ? "—" : value.Value.ToString(format, CultureInfo.InvariantCulture);

    private static string Reasons(IEnumerable<JsonElement> records)
    {
        var counts = new SortedDictionary<string, double>(StringComparer.Ordinal);
        foreach (var r in records)
        {
            if (r.TryGetProperty("result", out var result) && result.TryGetProperty("failures", out var failures)
                && failures.ValueKind == JsonValueKind.Object)
            {
                foreach (var f in failures.EnumerateObject())
                {
                    counts[f.Name] = counts.GetValueOrDefault(f.Name) + f.Value.GetDouble();
                }
            }
        }

        return counts.Count == 0
            ? ""
            : string.Join(", ", counts.OrderByDescending(kv => kv.Value).Take(3).Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key}×{kv.Value:F0}")));
    }
}
