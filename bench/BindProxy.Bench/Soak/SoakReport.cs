using System.Globalization;
using System.Text;

namespace BindProxy.Bench.Soak;

/// <summary>The soak's markdown report: the verdict, a row per span of the run, resources and totals.</summary>
internal static class SoakReport
{
    public static string Build(string title, SoakSummary s, IReadOnlyList<SoakRow> rows)
    {
        var md = new StringBuilder();
        Line(md, $"# {title}");
        Text(md);
        Text(md, s.Passed ? "**Passed**: nothing lost, no errors." : "**Failed**:");
        foreach (var failure in s.Failures)
        {
            Line(md, $"- {failure}");
        }

        Text(md);
        Line(md, $"- traffic: {Readable(TimeSpan.FromSeconds(s.TrafficS))} from {s.Started:yyyy-MM-dd HH:mm} UTC");
        Line(md, $"- load: {s.Load}");
        Line(md, $"- machine: {s.Machine}; RLIMIT_NOFILE {s.NofileSoft}/{s.NofileHard}");
        if (s.Commit is not null)
        {
            Line(md, $"- bindproxy: {s.Commit}");
        }

        Text(md);
        Text(md, "## Over time");
        Text(md);
        Text(md, "| t | RSS MB | fds | threads | CPU % | ping p50 µs | ping p99 ms | ping max ms | produce p50 ms | produce p99 ms | produce max ms | churn conn/s | acked msg/s | consumed msg/s | errors |");
        Text(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
        {
            Line(md, $"| {Clock(r.ToS)} | {Mb(r.RssKb)} | {r.Fds} | {r.Threads} | {r.CpuPercent:F0} | {r.PingP50Us} | {r.PingP99Us / 1000:F1} | {r.PingMaxUs / 1000:F1} | {r.ProduceP50Ms:F1} | {r.ProduceP99Ms:F1} | {r.ProduceMaxMs:F0} | {r.ChurnPerS:F0} | {r.AckedPerS:F0} | {r.ConsumedPerS:F0} | {r.Errors} |");
        }

        Text(md);
        Text(md, "## Proxy process");
        Text(md);
        Text(md, "| | idle before | start | end | min | max | after |");
        Text(md, "|---|---:|---:|---:|---:|---:|---:|");
        Line(md, $"| RSS MB | {Mb(s.RssKb.Idle)} | {Mb(s.RssKb.Start)} | {Mb(s.RssKb.End)} | {Mb(s.RssKb.Min)} | {Mb(s.RssKb.Max)} | {Mb(s.RssKb.After)} |");
        Line(md, $"| open fds | {s.Fds.Idle} | {s.Fds.Start} | {s.Fds.End} | {s.Fds.Min} | {s.Fds.Max} | {s.Fds.After} |");
        Line(md, $"| threads | {s.Threads.Idle} | {s.Threads.Start} | {s.Threads.End} | {s.Threads.Min} | {s.Threads.Max} | {s.Threads.After} |");
        Text(md);
        Text(md, "Idle before: routes up, consumers joined, no traffic yet. Start and end: the first and last sample under traffic. Min and max: over every sample under traffic. After: a few seconds after every client closed.");
        Line(md, $"CPU: {s.CpuSeconds:F0} s over the traffic ({s.CpuSeconds / Math.Max(s.TrafficS, 1) * 100:F0}% of one core). Stopped with SIGTERM: {(s.ProxyExitCode is { } code ? $"exit code {code}" : "killed, it did not exit")} after {s.ProxyStopS:F1} s.");
        Text(md);
        Text(md, "## Totals");
        Text(md);
        Line(md, $"- Tcp, long-lived: {s.PingOk:N0} round trips, {s.PingFailed} failed, {s.Reconnects} reconnects; p50 {s.PingP50Us} µs, p99 {s.PingP99Us / 1000:F1} ms, max {s.PingMaxUs / 1000:F1} ms");
        Line(md, $"- Tcp, churn: {s.ChurnOk:N0} connections ({s.ChurnPerS:F1}/s), {s.ChurnFailed} failed, {s.ChurnBehind} behind schedule; connect + exchange + close p99 {s.ChurnP99Ms:F1} ms");
        Line(md, $"- Kafka: {s.Produced:N0} produced, {s.Acked:N0} acknowledged, {s.ProduceFailed} failed, {s.ProduceBehind} behind schedule; produce p50 {s.ProduceP50Ms:F1} ms, p99 {s.ProduceP99Ms:F1} ms, max {s.ProduceMaxMs:F0} ms");
        Line(md, $"- Kafka, consumed: {s.Consumed:N0} distinct ({s.Deliveries:N0} deliveries); lost {s.Lost}, in the log twice {s.Duplicated}, at another offset {s.Misplaced}, redelivered {s.Redelivered}, wrong content {s.Corrupt}");
        Line(md, $"- Kafka, cluster: {s.LeaderMoves} leader move(s) of every partition, {s.Rebalances} rebalance(s) after the group settled");
        Line(md, $"- client errors: {(s.Errors.Count == 0 ? "none" : string.Join(", ", s.Errors.Select(e => $"{e.Key} ×{e.Value}")))}");
        Line(md, $"- proxy log: {s.ProxyWarnings} warning(s), {s.ProxyErrors} error(s){(s.ProxyLogExamples.Length == 0 ? string.Empty : ", e.g.")}");
        foreach (var example in s.ProxyLogExamples)
        {
            Line(md, $"  - `{example}`");
        }

        Line(md, $"- Kafka client log: {s.KafkaClientWarnings} warning(s) or worse");
        Line(md, $"- files: `{s.Jsonl}`, `{s.ProxyLog}`, `{s.KafkaClientLog}`");
        return md.ToString();
    }

    private static void Line(StringBuilder md, FormattableString text) => md.Append(text.ToString(CultureInfo.InvariantCulture)).Append('\n');

    private static void Text(StringBuilder md, string text = "") => md.Append(text).Append('\n');

    private static string Mb(long kb) => (kb / 1024.0).ToString("F1", CultureInfo.InvariantCulture);

    private static string Clock(double seconds)
    {
        var t = TimeSpan.FromSeconds(Math.Round(seconds));
        return t.TotalHours >= 1
            ? string.Create(CultureInfo.InvariantCulture, $"{(int)t.TotalHours}:{t.Minutes:D2}:{t.Seconds:D2}")
            : string.Create(CultureInfo.InvariantCulture, $"{t.Minutes}:{t.Seconds:D2}");
    }

    /// <summary>500 ms, 10 s, 2 min, 1.5 h: the largest unit that keeps the number at 1 or more.</summary>
    public static string Readable(TimeSpan duration) => duration switch
    {
        { TotalHours: >= 1 } => string.Create(CultureInfo.InvariantCulture, $"{duration.TotalHours:0.##} h"),
        { TotalMinutes: >= 1 } => string.Create(CultureInfo.InvariantCulture, $"{duration.TotalMinutes:0.#} min"),
        { TotalSeconds: >= 1 } => string.Create(CultureInfo.InvariantCulture, $"{duration.TotalSeconds:0.#} s"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{duration.TotalMilliseconds:0} ms"),
    };
}
