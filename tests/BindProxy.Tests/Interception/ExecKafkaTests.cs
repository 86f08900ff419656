using System.Text.RegularExpressions;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Interception;

/// <summary>
/// <c>bindproxy exec</c> with Kafka clients that only know the brokers' real addresses, against
/// librdkafka's mock cluster in its own process, all inside a private network namespace.
/// </summary>
[Collection(ExecTestGroup.Name)]
public sealed partial class ExecKafkaTests
{
    private const string Source = "127.0.0.7";
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(4);

    [Fact]
    public async Task Kafka_clients_under_exec_reach_the_real_brokers_from_the_source_address_also_a_broker_added_or_moved_later()
    {
        using var run = NamespaceRun.Require("kcat", "tcpdump", "tshark");
        var tshark = ExternalTool.Require("tshark");
        var (exitCode, stdout, stderr) = await run.RunAsync($$"""
            trap 'kill $cluster $dump 2>/dev/null' EXIT
            mock_cluster || exit 20
            echo "bootstrap $bootstrap"
            tcpdump -i lo -n -U -w capture.pcap tcp 2> tcpdump.err &
            dump=$!
            wait_for tcpdump.err 'listening on' || exit 21

            EXEC="$PROXY exec --source {{Source}} --kafka $first --admin off --"
            seq 1 10 | sed 's/^/kcat-/' | $EXEC kcat -b $first -P -t exec-test 2> produce.log; echo "kcat produce: $?"
            $EXEC dotnet {{NamespaceRun.DemoDll}} client --bootstrap $first --topic exec-test --messages 20 > client.out 2> client.log; echo "client: $? $(cat client.out)"

            # A broker added while the cluster runs, leading partition 0; then broker 2 moved to a new port.
            echo "add 4" >&3; wait_for cluster.out '^added 4' || exit 22
            echo "leader exec-test 0 4" >&3; wait_for cluster.out '^leader exec-test 0 4' || exit 23
            seq 1 5 | sed 's/^/added-/' | $EXEC kcat -b $first -P -t exec-test -p 0 2> added.log; echo "kcat produce to the added broker: $?"
            echo "move 2" >&3; wait_for cluster.out '^moved 2' || exit 24
            echo "leader exec-test 1 2" >&3; wait_for cluster.out '^leader exec-test 1 2' || exit 25
            seq 1 5 | sed 's/^/moved-/' | $EXEC kcat -b $first -P -t exec-test -p 1 2> moved.log; echo "kcat produce to the moved broker: $?"
            $EXEC kcat -b $first -C -t exec-test -o beginning -e -q > consumed.txt 2> consume.log; echo "kcat consume: $? $(grep -c -e '^kcat-' -e '^added-' -e '^moved-' consumed.txt)"

            sleep 0.5; kill $dump; wait $dump 2>/dev/null
            # The brokers as the cluster now advertises them (asked directly, after the capture).
            kcat -b $first -L 2>/dev/null | sed -n 's/^ *broker \([0-9]*\) at \([^ ]*\).*/broker \1 \2/p'
            echo "ruleset after: [$(nft list ruleset)]"
            """, Timeout);

        Assert.True(exitCode == 0, $"script failed ({exitCode}):\n{stdout}\n{stderr}\n{run.Logs()}");
        var context = $"{stdout}\n{run.Logs()}";
        Assert.Contains("kcat produce: 0", stdout, StringComparison.Ordinal);
        Assert.Contains("client: 0 produced 20 consumed 20", stdout, StringComparison.Ordinal);
        Assert.Contains("kcat produce to the added broker: 0", stdout, StringComparison.Ordinal);
        Assert.Contains("kcat produce to the moved broker: 0", stdout, StringComparison.Ordinal);
        Assert.True(stdout.Contains("kcat consume: 0 20", StringComparison.Ordinal), context);
        Assert.Contains("ruleset after: []", stdout, StringComparison.Ordinal);

        // Every broker port the clients used, from the start or learnt later.
        var initial = stdout.Split('\n').First(l => l.StartsWith("bootstrap ", StringComparison.Ordinal))["bootstrap ".Length..]
            .Split(',').Select(a => System.Net.IPEndPoint.Parse(a.Trim()).Port).ToList();
        var now = BrokerLine().Matches(stdout).ToDictionary(m => int.Parse(m.Groups[1].Value), m => int.Parse(m.Groups[2].Value));
        Assert.Equal(3, initial.Count);
        Assert.True(now.ContainsKey(4), context);
        int added = now[4], moved = now[2];
        Assert.DoesNotContain(moved, initial);
        var brokerPorts = initial.Concat([added, moved]).Distinct().ToList();

        // Only packets towards a broker port tell (a redirected SYN already carries the proxy's port on lo):
        // all of them come from the source, apart from the moved broker's own relay reaching the real broker.
        var packets = (await ExternalTool.RunAsync(tshark, "-r", Path.Combine(run.Directory, "capture.pcap"), "-Y",
                $"tcp.dstport in {{{string.Join(",", brokerPorts)}}}", "-T", "fields", "-e", "ip.src", "-e", "tcp.dstport"))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('\t'))
            .Select(f => (Source: f[0], Port: int.Parse(f[1])))
            .ToList();
        Assert.NotEmpty(packets);
        var strays = packets.Where(p => p.Source != Source && !(p.Source == "127.0.0.250" && p.Port == initial[1])).ToList();
        Assert.True(strays.Count == 0, $"packets towards broker ports from elsewhere than {Source}: {string.Join(", ", strays.Distinct())}\n{context}");
        foreach (var port in brokerPorts)
        {
            Assert.True(packets.Any(p => p.Source == Source && p.Port == port), $"no traffic to broker port {port} from {Source}\n{context}");
        }

        // The ports found in responses were added before the clients connected to them, and every
        // intercepted connection's log line names its process and original destination.
        var logs = run.Read("added.log") + run.Read("moved.log");
        Assert.Contains($"port {added} is intercepted from now on", logs, StringComparison.Ordinal);
        Assert.Contains($"port {moved} is intercepted from now on", logs, StringComparison.Ordinal);
        Assert.Matches($@"intercepted pid \d+ \(kcat -b 127\.0\.0\.1:{initial[0]} -P -t exec-test -p 1\): 127\.0\.0\.1:\d+ → 127\.0\.0\.1:{moved}, re-originated from {Regex.Escape(Source)}:\d+", logs);
        Assert.Contains("Wireshark: ip.addr==127.0.0.7; tshark -i lo -f 'host 127.0.0.7'", run.Read("produce.log"), StringComparison.Ordinal);
    }

    /// <summary>
    /// The filters exec prints at start, applied to a capture of a produce and a consume against
    /// three brokers: the capture filter and the display filter each keep every connection the
    /// command's clients made from the source address, to the bootstrap and to every broker.
    /// </summary>
    [Fact]
    public async Task The_filters_exec_prints_catch_every_connection_of_a_Kafka_session_with_three_brokers()
    {
        using var run = NamespaceRun.Require("kcat", "tcpdump", "tshark");
        var tshark = ExternalTool.Require("tshark");
        var tcpdump = ExternalTool.Find("tcpdump") ?? "/usr/sbin/tcpdump";
        var (exitCode, stdout, stderr) = await run.RunAsync($$"""
            trap 'kill $cluster $dump 2>/dev/null' EXIT
            mock_cluster || exit 20
            tcpdump -i lo -n -U -w capture.pcap tcp 2> tcpdump.err &
            dump=$!
            wait_for tcpdump.err 'listening on' || exit 21
            EXEC="$PROXY exec --source {{Source}} --kafka $first --admin off --"
            seq 1 9 | sed 's/^/m-/' | $EXEC kcat -b $first -P -t exec-test 2> produce.log; echo "produce: $?"
            $EXEC kcat -b $first -C -t exec-test -o beginning -e -q > consumed.txt 2> consume.log; echo "consume: $? $(grep -c '^m-' consumed.txt)"
            # tcpdump loses what it has not yet read from the kernel when it is interrupted: first
            # let the file stop growing (1 s unchanged, 10 s at most).
            prev=-1 same=0
            for _ in $(seq 1 100); do size=$(stat -c %s capture.pcap); if [ "$size" = "$prev" ]; then same=$((same + 1)); [ $same -ge 10 ] && break; else same=0; prev=$size; fi; sleep 0.1; done
            kill -INT $dump; wait $dump 2>/dev/null
            """, Timeout);

        Assert.True(exitCode == 0, $"script failed ({exitCode}):\n{stdout}\n{stderr}\n{run.Logs()}");
        var context = $"{stdout}\n{run.Logs()}";
        Assert.True(stdout.Contains("produce: 0", StringComparison.Ordinal) && stdout.Contains("consume: 0 9", StringComparison.Ordinal), context);

        var printed = PrintedFilters().Match(run.Read("produce.log"));
        Assert.True(printed.Success, context);
        string display = printed.Groups["display"].Value, capture = printed.Groups["capture"].Value;
        var pcap = Path.Combine(run.Directory, "capture.pcap");

        // Every connection opened from the source: its SYN, by source port and destination port.
        const string Syn = "tcp.flags.syn==1 && tcp.flags.ack==0";
        async Task<HashSet<string>> ConnectionsAsync(string file, string filter) =>
            (await ExternalTool.RunAsync(tshark, "-r", file, "-Y", filter, "-T", "fields", "-e", "tcp.srcport", "-e", "tcp.dstport"))
                .Split('\n', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        var all = await ConnectionsAsync(pcap, $"ip.src=={Source} && {Syn}");
        var brokers = all.Select(c => c.Split('\t')[1]).Distinct().ToList();
        Assert.True(brokers.Count >= 3, $"the session reached {brokers.Count} broker port(s): {string.Join(", ", all)}\n{context}");

        var byDisplay = await ConnectionsAsync(pcap, $"({display}) && ip.src=={Source} && {Syn}");
        Assert.True(all.SetEquals(byDisplay), $"the display filter '{display}' keeps {byDisplay.Count} of {all.Count} connections\n{context}");

        var filtered = Path.Combine(run.Directory, "by-capture-filter.pcap");
        await ExternalTool.RunAsync(tcpdump, "-r", pcap, "-w", filtered, capture);
        var byCapture = await ConnectionsAsync(filtered, $"ip.src=={Source} && {Syn}");
        Assert.True(all.SetEquals(byCapture), $"the capture filter '{capture}' keeps {byCapture.Count} of {all.Count} connections\n{context}");
    }

    [Fact]
    public async Task A_bystander_outside_exec_is_not_intercepted_while_an_execd_consumer_runs_and_SIGTERM_ends_both_the_command_and_the_rules()
    {
        using var run = NamespaceRun.Require("kcat", "ss");
        var (exitCode, stdout, stderr) = await run.RunAsync($$"""
            trap 'kill $cluster $bystander 2>/dev/null' EXIT
            mock_cluster || exit 20
            seq 1 6 | kcat -b $first -P -t exec-test 2> seed.log
            $PROXY exec --source {{Source}} --kafka $first --admin off -- kcat -u -b $first -C -t exec-test -o beginning > execd.txt 2> execd.log &
            execd=$!
            kcat -u -b $first -C -t exec-test -o beginning > bystander.txt 2> bystander.log &
            bystander=$!
            for _ in $(seq 1 600); do [ "$(wc -l < execd.txt)" -ge 6 ] && [ "$(wc -l < bystander.txt)" -ge 6 ] && break; sleep 0.1; done
            echo "consumed: $(wc -l < execd.txt) $(wc -l < bystander.txt)"
            echo "bystander pid $bystander"
            ss -tnpH > ss.txt
            kill -TERM $execd; wait $execd; echo "exec after SIGTERM: $?"
            echo "ruleset after: [$(nft list ruleset)]"
            """, Timeout);

        Assert.True(exitCode == 0, $"script failed ({exitCode}):\n{stdout}\n{stderr}\n{run.Logs()}");
        var context = $"{stdout}\n{run.Logs()}\n--- ss\n{run.Read("ss.txt")}";
        Assert.True(stdout.Contains("consumed: 6 6", StringComparison.Ordinal), context);
        int bystanderPid = int.Parse(Regex.Match(stdout, @"bystander pid (\d+)").Groups[1].Value);
        var log = run.Read("execd.log");
        int execdPid = int.Parse(Regex.Match(log, @"exec: started pid (\d+)").Groups[1].Value);

        // The kernel's view while both ran: a direct connection has the broker's socket at its other
        // end; an intercepted one has the proxy's, so no socket faces it from the broker's port.
        var sockets = run.Read("ss.txt").Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length >= 5 && f[0] == "ESTAB")
            .Select(f => (Local: f[3], Peer: f[4], Process: f.Length > 5 ? f[5] : ""))
            .ToList();
        bool Direct((string Local, string Peer, string Process) s) => sockets.Any(o => o.Local == s.Peer && o.Peer == s.Local);
        var bystander = sockets.Where(s => s.Process.Contains($"pid={bystanderPid},", StringComparison.Ordinal)).ToList();
        var execd = sockets.Where(s => s.Process.Contains($"pid={execdPid},", StringComparison.Ordinal)).ToList();
        Assert.True(bystander.Count > 0 && execd.Count > 0, context);
        Assert.True(bystander.All(Direct), $"a bystander connection was redirected\n{context}");
        Assert.True(execd.All(s => !Direct(s)), $"an exec'd connection reached a broker directly\n{context}");
        Assert.DoesNotContain($"intercepted pid {bystanderPid} ", log, StringComparison.Ordinal);
        Assert.Contains($"intercepted pid {execdPid} ", log, StringComparison.Ordinal);

        // SIGTERM to exec reaches the command; exec exits with its code once it is gone, rules removed.
        var exited = Regex.Match(log, @"exec: the command exited with code (\d+)");
        Assert.True(exited.Success, context);
        Assert.Contains($"exec after SIGTERM: {exited.Groups[1].Value}", stdout, StringComparison.Ordinal);
        Assert.Contains("ruleset after: []", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Per_client_assignment_by_kafka_client_id_works_under_exec()
    {
        using var run = NamespaceRun.Require();
        var (exitCode, stdout, stderr) = await run.RunAsync($$"""
            trap 'kill $cluster 2>/dev/null' EXIT
            mock_cluster || exit 20
            CLIENT="dotnet {{NamespaceRun.DemoDll}} client --bootstrap $first --topic exec-test --messages 10"
            $PROXY exec --source 127.0.0.7-127.0.0.9 --kafka $first --assign kafka-client-id --admin off -- \
              sh -c "$CLIENT --client-id alpha > alpha.out & $CLIENT --client-id beta > beta.out; wait" 2> exec.log
            echo "exec: $? alpha: $(cat alpha.out) beta: $(cat beta.out)"
            """, Timeout);

        Assert.True(exitCode == 0, $"script failed ({exitCode}):\n{stdout}\n{stderr}\n{run.Logs()}");
        var context = $"{stdout}\n{run.Logs()}";
        Assert.True(stdout.Contains("exec: 0 alpha: produced 10 consumed 10 beta: produced 10 consumed 10", StringComparison.Ordinal), context);

        // Every connection of one client.id left from one address, and the two clients from different ones.
        var sources = CloseLine().Matches(run.Read("exec.log"))
            .GroupBy(m => m.Groups[2].Value, m => m.Groups[1].Value)
            .ToDictionary(g => g.Key, g => g.Distinct().ToList());
        Assert.True(sources.ContainsKey("alpha") && sources.ContainsKey("beta"), context);
        Assert.True(sources["alpha"].Count == 1 && sources["beta"].Count == 1 && sources["alpha"][0] != sources["beta"][0], context);
    }

    [GeneratedRegex(@"→ (127\.0\.0\.\d+):\d+ → 127\.0\.0\.1:\d+ closed: .*\(client\.id (alpha|beta),")]
    private static partial Regex CloseLine();

    // exec: the command's traffic: Wireshark: ip.addr==127.0.0.7; tshark -i lo -f 'host 127.0.0.7'
    [GeneratedRegex(@"the command's traffic: Wireshark: (?<display>.+?); tshark -i lo -f '(?<capture>[^']+)'")]
    private static partial Regex PrintedFilters();

    [GeneratedRegex(@"^broker (\d+) 127\.0\.0\.1:(\d+)$", RegexOptions.Multiline)]
    private static partial Regex BrokerLine();
}
