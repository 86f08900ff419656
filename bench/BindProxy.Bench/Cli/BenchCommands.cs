using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using System.Text.Json;
using BindProxy.Bench.Echo;
using BindProxy.Bench.Load;
using BindProxy.Bench.Measurement;
using BindProxy.Bench.Reporting;
using BindProxy.Bench.Soak;

namespace BindProxy.Bench.Cli;

/// <summary>
/// The subcommands. Measuring commands print one JSON line on stdout (for scripts) and a readable
/// summary on stderr.
/// </summary>
internal static class BenchCommands
{
    private const string InlineCompletions = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    public static RootCommand Root()
    {
        var root = new RootCommand("BindProxy benchmark harness: echo server, latency, churn, connection-hold and soak load tools.");
        root.Add(EchoServerCommand());
        root.Add(PingPongCommand());
        root.Add(KafkaPingCommand());
        root.Add(ChurnCommand());
        root.Add(FairnessCommand());
        root.Add(StormCommand());
        root.Add(HoldCommand());
        root.Add(ProcStatCommand());
        root.Add(ReportCommand());
        root.Add(SoakCommand());
        return root;
    }

    private static Command EchoServerCommand()
    {
        var listen = Options.Endpoint("--listen", "Address to listen on, ADDR:PORT (port 0 picks one).");
        var mode = new Option<EchoMode>("--mode") { Description = "echo sends bytes back; sink discards them.", DefaultValueFactory = _ => EchoMode.Echo };
        var backlog = Options.Int("--backlog", "Listen backlog.", 4096, 1, 65535);
        var threaded = new Option<bool>("--thread-per-connection") { Description = "A thread with blocking calls per connection (fair between connections; for few connections only)." };
        var command = new Command("echo-server", "Echo (or sink) server used as the common upstream.") { listen, mode, backlog, threaded };
        command.SetAction(async (parse, ct) =>
        {
            // Run socket continuations on the epoll thread instead of hopping to the thread pool:
            // it halves the echo server's share of a loopback round trip. Read once, at the first
            // async socket operation, so setting it here (before any) is enough.
            if (Environment.GetEnvironmentVariable(InlineCompletions) is null)
            {
                Environment.SetEnvironmentVariable(InlineCompletions, "1");
            }

            var limit = FileLimits.RaiseToHard();
            var server = new EchoServer(parse.GetValue(listen)!, parse.GetValue(mode), parse.GetValue(backlog), parse.GetValue(threaded));
            await server.RunAsync(
                ep => Console.Error.WriteLine($"echo-server listening on {ep} ({parse.GetValue(mode)}), nofile {limit.Soft}/{limit.Hard}"),
                ct);
            Console.Error.WriteLine($"echo-server stopped after {server.Accepted} connections");
        });
        return command;
    }

    private static Command PingPongCommand()
    {
        var target = Options.Endpoint("--target", "Where to connect, ADDR:PORT.");
        var size = Options.Int("--size", "Message size in bytes.", 64, 1, 1 << 20);
        var count = Options.Int("--count", "Measured round trips.", 20_000, 1, 10_000_000);
        var warmup = Options.Int("--warmup", "Unmeasured round trips first.", 2_000, 0, 10_000_000);
        var timeout = Options.Duration("--timeout", "Connect and per-message timeout.", TimeSpan.FromSeconds(5));
        var command = new Command("pingpong", "One connection, one message in flight: round-trip percentiles in µs.") { target, size, count, warmup, timeout };
        command.SetAction((parse, ct) =>
        {
            var result = PingPong.Run(parse.GetValue(target)!, parse.GetValue(size), parse.GetValue(count), parse.GetValue(warmup), parse.GetValue(timeout), ct);
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"pingpong {result.Target}: {result.Completed} round trips of {result.Size} B, p50 {result.P50Us} µs, p99 {result.P99Us} µs, p99.9 {result.P999Us} µs, max {result.MaxUs} µs{(result.Error is null ? "" : ", error " + result.Error)}"));
            Console.WriteLine(JsonSerializer.Serialize(result, BenchJsonContext.Default.PingPongResult));
            return Task.FromResult(result.Error is null ? 0 : 1);
        });
        return command;
    }

    private static Command KafkaPingCommand()
    {
        var target = Options.Endpoint("--target", "A Kafka broker (or a proxy in front of one), ADDR:PORT.");
        var count = Options.Int("--count", "Measured round trips at most.", 20_000, 1, 10_000_000);
        var warmup = Options.Int("--warmup", "Unmeasured round trips first.", 100, 0, 1_000_000);
        var duration = Options.Duration("--duration", "Stop after this long even if --count is not reached.", TimeSpan.FromSeconds(10));
        var interval = Options.Duration("--interval", "Pause between round trips (0: one after another).", TimeSpan.Zero);
        var version = Options.Int("--api-version", "ApiVersions request version, 0 or 1.", 0, 0, 1);
        var timeout = Options.Duration("--timeout", "Connect and per-request timeout.", TimeSpan.FromSeconds(5));
        var command = new Command("kafka-ping", "One connection, one ApiVersions request in flight: round-trip percentiles in µs. Stops early, with its figures, on SIGINT/SIGTERM.")
        {
            target, count, warmup, duration, interval, version, timeout,
        };
        command.SetAction((parse, ct) =>
        {
            // A script stops it when its bulk traffic ends: SIGTERM ends the loop and still prints the figures.
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
            {
                context.Cancel = true;
                stop.Cancel();
            });
            var result = KafkaPing.Run(parse.GetValue(target)!, parse.GetValue(count), parse.GetValue(warmup), parse.GetValue(duration),
                parse.GetValue(interval), (short)parse.GetValue(version), parse.GetValue(timeout),
                local => Console.Error.WriteLine($"kafka-ping connected from {local}"), stop.Token);
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"kafka-ping {result.Target}: {result.Completed} ApiVersions v{result.ApiVersion} round trips in {result.DurationS} s, p50 {result.P50Us} µs, p99 {result.P99Us} µs, p99.9 {result.P999Us} µs, max {result.MaxUs} µs{(result.Error is null ? "" : ", error " + result.Error)}"));
            Console.WriteLine(JsonSerializer.Serialize(result, BenchJsonContext.Default.KafkaPingResult));
            return Task.FromResult(result.Error is null ? 0 : 1);
        });
        return command;
    }

    private static Command ChurnCommand()
    {
        var target = Options.Endpoint("--target", "Where to connect, ADDR:PORT.");
        var duration = Options.Duration("--duration", "How long to churn.", TimeSpan.FromSeconds(5));
        var concurrency = Options.Int("--concurrency", "Parallel workers.", 16, 1, 4096);
        var size = Options.Int("--size", "Bytes exchanged per connection.", 64, 1, 1 << 20);
        var timeout = Options.Duration("--timeout", "Connect and exchange timeout.", TimeSpan.FromSeconds(5));
        var command = new Command("churn", "Connect, one exchange, close, repeatedly: connections/s and failures.") { target, duration, concurrency, size, timeout };
        command.SetAction(async (parse, ct) =>
        {
            FileLimits.RaiseToHard();
            var result = await Churn.RunAsync(parse.GetValue(target)!, parse.GetValue(duration), parse.GetValue(concurrency), parse.GetValue(size), parse.GetValue(timeout), ct);
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"churn {result.Target}: {result.Completed} connections in {result.DurationS} s = {result.ConnectionsPerSecond} conn/s, p99 {result.P99Ms} ms, {result.Failed} failed"));
            Console.WriteLine(JsonSerializer.Serialize(result, BenchJsonContext.Default.ChurnResult));
            return 0;
        });
        return command;
    }

    private static Command FairnessCommand()
    {
        var target = Options.Endpoint("--target", "Where to connect (an echo server, or a proxy in front of one), ADDR:PORT.");
        var bulk = Options.Int("--bulk", "Bulk echo streams sending and reading flat out.", 2, 0, 64);
        var pingers = Options.Int("--pingers", "Light connections, each exchanging one message every --interval.", 16, 1, 1024);
        var interval = Options.Duration("--interval", "Pause between one pinger's round trips.", TimeSpan.FromMilliseconds(10));
        var duration = Options.Duration("--duration", "How long the pingers measure.", TimeSpan.FromSeconds(10));
        var warmup = Options.Duration("--warmup", "How long the bulk streams run before the pingers start.", TimeSpan.FromSeconds(1));
        var size = Options.Int("--size", "Ping message size in bytes.", 64, 1, 65536);
        var timeout = Options.Duration("--timeout", "Connect and per-message timeout.", TimeSpan.FromSeconds(10));
        var command = new Command("fairness", "Round trips of light connections beside bulk streams through the same target: percentiles in µs.")
        {
            target, bulk, pingers, interval, duration, warmup, size, timeout,
        };
        command.SetAction((parse, ct) =>
        {
            var result = Fairness.Run(parse.GetValue(target)!, parse.GetValue(bulk), parse.GetValue(pingers), parse.GetValue(interval),
                parse.GetValue(duration), parse.GetValue(warmup), parse.GetValue(size), parse.GetValue(timeout), ct);
            var failures = string.Join(", ", result.Failures.Select(kv => $"{kv.Key}×{kv.Value}"));
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"fairness {result.Target}: {result.Pings} round trips on {result.Pingers} pingers beside {result.Bulk} bulk streams ({result.BulkGbps} Gbit/s): p50 {result.P50Us} µs, p99 {result.P99Us} µs, p99.9 {result.P999Us} µs, max {result.MaxUs} µs; {result.Failed} failed [{failures}]"));
            Console.WriteLine(JsonSerializer.Serialize(result, BenchJsonContext.Default.FairnessResult));
            return Task.FromResult(result.Failed == 0 ? 0 : 1);
        });
        return command;
    }

    private static Command StormCommand()
    {
        var target = Options.Endpoint("--target", "The proxy, in front of an echo server, ADDR:PORT.");
        var pingers = Options.Int("--pingers", "Light connections, opened first, each exchanging one message every --interval.", 4, 1, 256);
        var fill = Options.Int("--fill", "Connections opened and held next, to use up the proxy's descriptors (the rest are refused).", 200, 0, 100_000);
        var attempts = Options.Int("--attempts", "Clients in the storm.", 5000, 1, 10_000_000);
        var concurrency = Options.Int("--concurrency", "Storm clients at once.", 32, 1, 4096);
        var rate = Options.Int("--rate", "Storm clients a second, paced (0: as fast as --concurrency goes).", 0, 0, 1_000_000);
        var baseline = Options.Duration("--baseline", "How long the pingers measure before the storm.", TimeSpan.FromSeconds(3));
        var interval = Options.Duration("--interval", "Pause between one pinger's round trips.", TimeSpan.FromMilliseconds(2));
        var timeout = Options.Duration("--timeout", "Connect and per-message timeout.", TimeSpan.FromSeconds(10));
        var command = new Command("storm", "Round trips of connections already served, before and during a storm of clients the proxy refuses: percentiles in µs.")
        {
            target, pingers, fill, attempts, concurrency, rate, baseline, interval, timeout,
        };
        command.SetAction((parse, ct) =>
        {
            FileLimits.RaiseToHard();
            var result = Storm.Run(parse.GetValue(target)!, parse.GetValue(pingers), parse.GetValue(fill), parse.GetValue(attempts), parse.GetValue(concurrency), parse.GetValue(rate),
                parse.GetValue(baseline), parse.GetValue(interval), parse.GetValue(timeout), ct);
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"storm {result.Target}: {result.Held} held, {result.Attempts} clients in {result.StormSeconds} s ({result.Refused} refused, {result.Served} served); pings before: p50 {result.BaselineP50Us} µs, p99 {result.BaselineP99Us} µs; during: p50 {result.StormP50Us} µs, p99 {result.StormP99Us} µs, max {result.StormMaxUs} µs; {result.Failed} failed"));
            Console.WriteLine(JsonSerializer.Serialize(result, BenchJsonContext.Default.StormResult));
            return Task.FromResult(result.Failed == 0 ? 0 : 1);
        });
        return command;
    }

    private static Command HoldCommand()
    {
        var targets = Options.EndpointList("--targets", "Comma-separated ADDR:PORT list; connections go round-robin over it.");
        var count = Options.Int("--count", "Connections to open and hold.", 1000, 1, 1_000_000);
        var parallel = Options.Int("--parallel", "Connects (and exchanges) in flight at once.", 128, 1, 10_000);
        var interval = new Option<TimeSpan?>("--interval")
        {
            Description = "Exchange --bytes on every connection this often while holding (default: idle).",
            CustomParser = r =>
            {
                var text = r.Tokens.Count > 0 ? r.Tokens[0].Value : string.Empty;
                if (ValueParsers.TryParseDuration(text, out var d))
                {
                    return d;
                }

                r.AddError($"'{text}' is not a duration such as 500ms, 5s or 2m.");
                return null;
            },
        };
        var bytes = Options.Int("--bytes", "Bytes per echo check; 0 skips the verification echo.", 16, 0, 65536);
        var holdFor = Options.Duration("--hold", "How long to hold the connections once open.", TimeSpan.FromSeconds(10));
        var pid = new Option<int?>("--pid") { Description = "Proxy process whose tree's RSS/PSS is read before and after." };
        var timeout = Options.Duration("--timeout", "Connect and echo timeout.", TimeSpan.FromSeconds(10));
        var warmup = Options.Int("--warmup", "Connections opened, echoed and closed first (1 s before the baseline is read), so one-time costs such as code warm-up stay out of the per-connection figure.", 0, 0, 1_000_000);
        var command = new Command("hold", "Open and hold N connections; report failures, open time and the proxy's memory per connection.")
        {
            targets, count, parallel, interval, bytes, holdFor, pid, timeout, warmup,
        };
        command.SetAction(async (parse, ct) =>
        {
            var limit = FileLimits.RaiseToHard();
            Console.Error.WriteLine($"hold: nofile soft {limit.Soft} hard {limit.Hard}{(limit.Error is null ? "" : " (" + limit.Error + ")")}");
            var settings = new HoldSettings(
                parse.GetValue(targets)!, parse.GetValue(count), parse.GetValue(parallel), parse.GetValue(interval),
                parse.GetValue(bytes), parse.GetValue(holdFor), parse.GetValue(pid), parse.GetValue(timeout));
            if (parse.GetValue(warmup) is > 0 and var warm)
            {
                var warmed = await new Hold(settings with { Count = warm, Interval = null, HoldFor = TimeSpan.Zero, Pid = null }, limit)
                    .RunAsync(m => Console.Error.WriteLine("hold warm-up: " + m), ct);
                Console.Error.WriteLine($"hold warm-up: {warmed.Verified} of {warm} connections echoed and closed");
                await Task.Delay(TimeSpan.FromSeconds(1), ct);
            }

            var result = await new Hold(settings, limit).RunAsync(m => Console.Error.WriteLine("hold: " + m), ct);
            var failures = string.Join(", ", result.Failures.Select(kv => $"{kv.Key}×{kv.Value}"));
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"hold: established {result.Established}, verified {result.Verified}, failed {result.Failed} [{failures}], open {result.OpenMs} ms; proxy RSS {result.RssBeforeKb} → {result.RssEndKb} KB ({result.RssPerConnKb?.ToString(CultureInfo.InvariantCulture) ?? "n/a"} KB/conn)"));
            Console.WriteLine(JsonSerializer.Serialize(result, BenchJsonContext.Default.HoldResult));
            return 0;
        });
        return command;
    }

    private static Command ProcStatCommand()
    {
        var pid = new Option<int>("--pid") { Description = "Root of the process tree.", Required = true };
        var command = new Command("procstat", "CPU seconds, RSS and PSS of a process and its descendants, as one JSON line.") { pid };
        command.SetAction(parse =>
        {
            var p = parse.GetValue(pid);
            var s = ProcessTree.Sample(p);
            Console.WriteLine(JsonSerializer.Serialize(new ProcStatResult("procstat", p, s.Processes, Math.Round(s.CpuSeconds, 3), s.RssKb, s.PssKb), BenchJsonContext.Default.ProcStatResult));
            return s.Processes > 0 ? 0 : 1;
        });
        return command;
    }

    private static Command ReportCommand()
    {
        var input = new Option<FileInfo>("--input") { Description = "Results file, one JSON record per line.", Required = true };
        var output = new Option<FileInfo?>("--output") { Description = "Markdown file to write (stdout always gets it too)." };
        var title = new Option<string>("--title") { Description = "Report heading.", DefaultValueFactory = _ => "BindProxy benchmark" };
        var baseline = new Option<string>("--baseline") { Description = "Contender the ratios are taken against.", DefaultValueFactory = _ => "haproxy" };
        var command = new Command("report", "Median tables with ratios from a results file, as markdown.") { input, output, title, baseline };
        command.SetAction(parse =>
        {
            using var results = ResultSet.Load(parse.GetValue(input)!.FullName);
            var markdown = new MarkdownReport(results, parse.GetValue(baseline)!).Build(parse.GetValue(title)!);
            if (parse.GetValue(output) is { } file)
            {
                File.WriteAllText(file.FullName, markdown);
            }

            Console.Write(markdown);
            return 0;
        });
        return command;
    }

    private static Command SoakCommand()
    {
        var echo = Options.Endpoint("--echo", "The echo server the Tcp route forwards to, ADDR:PORT.");
        var proxy = new Option<FileInfo>("--proxy") { Description = "BindProxy.dll to run as a child process.", Required = true };
        var tcpListen = Options.Endpoint("--tcp-listen", "The Tcp route's listener.", IPEndPoint.Parse("127.0.0.1:18601"));
        var kafkaListen = Options.Endpoint("--kafka-listen", "The Kafka route's bootstrap listener.", IPEndPoint.Parse("127.0.0.1:18602"));
        var admin = Options.Endpoint("--admin", "The proxy's admin endpoint.", IPEndPoint.Parse("127.0.0.1:18603"));
        var duration = Options.Duration("--duration", "How long traffic runs.", TimeSpan.FromHours(1));
        var sampleEvery = Options.Duration("--sample-every", "How often the proxy and the loads are sampled.", TimeSpan.FromSeconds(10));
        var rowEvery = Options.OptionalDuration("--row-every", "Span of one report row (default: a twelfth of --duration, in whole samples).");
        var connections = Options.Int("--connections", "Long-lived Tcp connections.", 500, 0, 100_000);
        var pingEvery = Options.Duration("--ping-every", "Interval between exchanges on each long-lived connection.", TimeSpan.FromSeconds(1));
        var size = Options.Int("--size", "Bytes per Tcp exchange.", 64, 1, 65536);
        var churnRate = Options.Int("--churn-rate", "Tcp connections per second: connect, one exchange, close (0: none).", 100, 0, 10_000);
        var produceRate = Options.Int("--produce-rate", "Kafka messages produced per second (0: none).", 200, 0, 50_000);
        var consumers = Options.Int("--consumers", "Members of the consumer group.", 2, 1, SoakSettings.Partitions);
        var leaderEvery = Options.OptionalDuration("--leader-move-every", "Move every partition's leader this often; 0 never (default: a twelfth of --duration, 30 s to 5 min).");
        var timeout = Options.Duration("--timeout", "Connect and exchange timeout of every Tcp operation.", TimeSpan.FromSeconds(5));
        var outputDir = new Option<DirectoryInfo>("--output-dir") { Description = "Where soak-STAMP.jsonl, .md and the logs go.", DefaultValueFactory = _ => new DirectoryInfo("bench/results") };
        var commit = new Option<string?>("--commit") { Description = "The BindProxy revision, recorded in the report." };
        var command = new Command("soak", "Mixed Tcp and Kafka traffic through a BindProxy process for a long time: RSS, descriptors and latency over time, every Kafka message checked.")
        {
            echo, proxy, tcpListen, kafkaListen, admin, duration, sampleEvery, rowEvery, connections, pingEvery, size, churnRate, produceRate,
            consumers, leaderEvery, timeout, outputDir, commit,
        };
        command.SetAction(async (parse, ct) =>
        {
            var runFor = parse.GetValue(duration);
            var every = parse.GetValue(sampleEvery);
            if (runFor < every || every <= TimeSpan.Zero)
            {
                Console.Error.WriteLine("soak: --duration must be at least one --sample-every, which must be positive.");
                return SoakRun.CannotStart;
            }

            var moveEvery = parse.GetValue(leaderEvery) ?? SoakSettings.DefaultLeaderMoveEvery(runFor);
            var settings = new SoakSettings(
                parse.GetValue(echo)!,
                parse.GetValue(proxy)!.FullName,
                parse.GetValue(tcpListen)!,
                parse.GetValue(kafkaListen)!,
                parse.GetValue(admin)!,
                runFor,
                every,
                parse.GetValue(rowEvery) is { } row && row >= every ? row : SoakSettings.DefaultRowEvery(runFor, every),
                parse.GetValue(connections),
                parse.GetValue(pingEvery),
                parse.GetValue(size),
                parse.GetValue(churnRate),
                parse.GetValue(produceRate),
                parse.GetValue(consumers),
                moveEvery > TimeSpan.Zero ? moveEvery : null,
                parse.GetValue(timeout),
                parse.GetValue(outputDir)!.FullName,
                parse.GetValue(commit));
            return await SoakRun.RunAsync(settings, Console.Error.WriteLine, Console.Out, ct);
        });
        return command;
    }
}
