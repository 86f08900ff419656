using System.Text.RegularExpressions;
using BindProxy.Tests.Configuration;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Interception;

/// <summary>
/// Routes with <c>Intercept</c> in the configuration file: a long-running proxy redirects the
/// connections of one cgroup, or of one user, to the servers' real addresses, re-originates them
/// from the route's source, leaves everyone else alone, follows reloads, and takes its table
/// with it when it stops. Each in a private network namespace.
/// </summary>
[Collection(ExecTestGroup.Name)]
public sealed partial class InterceptRouteTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task A_cgroup_and_a_user_are_intercepted_to_the_real_server_a_bystander_is_not_and_reload_and_SIGTERM_take_the_rules_away()
    {
        using var run = NamespaceRun.Require("setpriv", "ss");
        var bench = ExecCommandTests.BenchTool();
        var group = "bindproxy-test-" + Guid.NewGuid().ToString("n")[..12];
        var (exitCode, stdout, stderr) = await run.RunAsync($$"""
            dotnet '{{bench}}' echo-server --listen 127.0.0.1:9000 2> server-9000.log & s1=$!
            dotnet '{{bench}}' echo-server --listen 127.0.0.1:9001 2> server-9001.log & s2=$!
            mkdir /sys/fs/cgroup/{{group}}
            trap 'kill $s1 $s2 $proxy 2>/dev/null; sleep 0.2; rmdir /sys/fs/cgroup/{{group}}' EXIT
            wait_for server-9000.log 'listening on' || exit 20
            wait_for server-9001.log 'listening on' || exit 21
            write_config() {
              cat > intercept.json.new <<JSON
            { "BindProxy": { "Routes": {
                "by-cgroup": { "Listen": "127.0.0.1:0", "Source": "127.0.0.7", "Intercept": { "Ports": "9000", "Cgroup": "/sys/fs/cgroup/{{group}}" } }
                $1
            } } }
            JSON
              mv intercept.json.new intercept.json
            }
            write_config ', "by-uid": { "Listen": "127.0.0.1:0", "Source": "127.0.0.8", "Intercept": { "Ports": "9001", "Uid": 1000 } }'
            $PROXY --config intercept.json --admin off > proxy.log 2>&1 & proxy=$!
            wait_for proxy.log 'Route by-cgroup: table inet' || exit 22
            wait_for proxy.log 'Route by-uid: table inet' || exit 23

            # What a server sees: the peers of its established connections, asked while the client holds
            # one (after the one before has closed, so each answer is about one connection).
            peers() { ss -Htn state established "( sport = :$1 )" | awk '{ print $4 }' | sed 's/:[0-9]*$//' | sort -u | tr '\n' ' '; }
            settle() { for _ in $(seq 1 200); do [ -z "$(peers $1)" ] && return; sleep 0.05; done; }
            talk() { settle $1; exec 3<>/dev/tcp/127.0.0.1/$1; echo ping >&3; read -r reply <&3; echo "$reply, the server sees [$(peers $1)]"; exec 3>&-; }
            export -f peers settle talk

            echo "cgroup client: $(bash -c 'echo $$ > /sys/fs/cgroup/{{group}}/cgroup.procs; talk 9000')"
            echo "uid client: $(setpriv --reuid 1000 --regid 1000 --clear-groups bash -c 'talk 9001')"
            echo "bystander 9000: $(talk 9000)"
            echo "bystander 9001: $(talk 9001)"
            echo "cgroup client to 9001: $(bash -c 'echo $$ > /sys/fs/cgroup/{{group}}/cgroup.procs; talk 9001')"
            echo "table: [$(nft list table inet bindproxy_$proxy | tr -s '\n\t' '  ')]"

            write_config ''
            wait_for proxy.log 'Route by-uid: no longer intercepted' || exit 24
            echo "table after reload: [$(nft list table inet bindproxy_$proxy | tr -s '\n\t' '  ')]"
            echo "uid client after reload: $(setpriv --reuid 1000 --regid 1000 --clear-groups bash -c 'talk 9001')"
            echo "cgroup client after reload: $(bash -c 'echo $$ > /sys/fs/cgroup/{{group}}/cgroup.procs; talk 9000')"

            # The group removed and made again, as a restarting service's is: the rule follows the new group.
            rmdir /sys/fs/cgroup/{{group}}
            wait_for proxy.log 'does not exist (any more)' || exit 25
            mkdir /sys/fs/cgroup/{{group}}
            for _ in $(seq 1 200); do [ "$(grep -c 'Route by-cgroup: table inet' proxy.log)" -ge 2 ] && break; sleep 0.05; done
            echo "cgroup client in the group made anew: $(bash -c 'echo $$ > /sys/fs/cgroup/{{group}}/cgroup.procs; talk 9000')"

            kill -TERM $proxy; wait $proxy; echo "proxy exit $?"
            echo "tables after SIGTERM: [$(nft list tables)]"
            """, Timeout);

        Assert.True(exitCode == 0, $"script failed ({exitCode}):\n{stdout}\n{stderr}\n{run.Logs()}");
        var context = $"{stdout}\n{run.Logs()}";
        var log = run.Read("proxy.log");

        // Each selected client reached the real server's address through the proxy, from its route's source.
        Assert.True(stdout.Contains("cgroup client: ping, the server sees [127.0.0.7 ]", StringComparison.Ordinal), context);
        Assert.True(stdout.Contains("uid client: ping, the server sees [127.0.0.8 ]", StringComparison.Ordinal), context);
        Assert.Matches(@"by-cgroup: intercepted pid \d+ \(bash -c .*\): 127\.0\.0\.1:\d+ → 127\.0\.0\.1:9000, re-originated from 127\.0\.0\.7:\d+", log);
        // Without a cgroup to narrow the search, the client's process is looked for in all of /proc, which a busy machine may not finish in time.
        Assert.Matches(@"by-uid: intercepted (pid \d+ \(bash -c talk 9001\)|an unknown process): 127\.0\.0\.1:\d+ → 127\.0\.0\.1:9001, re-originated from 127\.0\.0\.8:\d+", log);

        // Everyone else, and the selected clients on other ports, went straight there.
        Assert.True(stdout.Contains("bystander 9000: ping, the server sees [127.0.0.1 ]", StringComparison.Ordinal), context);
        Assert.True(stdout.Contains("bystander 9001: ping, the server sees [127.0.0.1 ]", StringComparison.Ordinal), context);
        Assert.True(stdout.Contains("cgroup client to 9001: ping, the server sees [127.0.0.1 ]", StringComparison.Ordinal), context);
        Assert.Equal(1, Regex.Count(log, "by-uid: intercepted "));

        var table = TableLine().Match(stdout).Groups[1].Value;
        Assert.Contains($"socket cgroupv2 level 1 \"{group}\" tcp dport @ports_by_cgroup redirect to :", table, StringComparison.Ordinal);
        Assert.Contains("meta skuid 1000 tcp dport @ports_by_uid redirect to :", table, StringComparison.Ordinal);

        // The route removed by a reload takes its rule along; the other stays.
        Assert.Contains("Reload: route by-uid removed", log, StringComparison.Ordinal);
        // Its rule went before its listener closed: its clients were not redirected to a closed port meanwhile.
        Assert.True(log.IndexOf("Route by-uid: no longer intercepted", StringComparison.Ordinal) < log.IndexOf("Reload: route by-uid removed", StringComparison.Ordinal), log);
        var reloaded = TableAfterReloadLine().Match(stdout).Groups[1].Value;
        Assert.True(reloaded.Contains("socket cgroupv2", StringComparison.Ordinal) && !reloaded.Contains("skuid", StringComparison.Ordinal), context);
        Assert.True(stdout.Contains("uid client after reload: ping, the server sees [127.0.0.1 ]", StringComparison.Ordinal), context);
        Assert.True(stdout.Contains("cgroup client after reload: ping, the server sees [127.0.0.7 ]", StringComparison.Ordinal), context);

        // A group made anew is a new group to the kernel; the rule is loaded again for it.
        Assert.Contains($"Route by-cgroup: cgroup /sys/fs/cgroup/{group} does not exist (any more); nothing is intercepted until it is made again", log, StringComparison.Ordinal);
        Assert.True(stdout.Contains("cgroup client in the group made anew: ping, the server sees [127.0.0.7 ]", StringComparison.Ordinal), context);
        Assert.Equal(3, Regex.Count(log, "by-cgroup: intercepted "));

        // SIGTERM: a clean exit, and no table left.
        Assert.True(stdout.Contains("proxy exit 0", StringComparison.Ordinal), context);
        Assert.True(stdout.Contains("tables after SIGTERM: []", StringComparison.Ordinal), context);
        Assert.Contains("Interception: removed table inet bindproxy_", log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_CAP_NET_ADMIN_an_intercepting_route_stops_the_start_with_one_message_that_says_what_to_do()
    {
        using var run = NamespaceRun.Require("setpriv");
        await File.WriteAllTextAsync(Path.Combine(run.Directory, "intercept.json"), """
            { "BindProxy": { "Routes": { "clients": { "Listen": "127.0.0.1:0", "Source": "127.0.0.7", "Intercept": { "Ports": "9000", "Uid": 1000 } } } } }
            """);
        var (exitCode, stdout, stderr) = await run.RunAsync("""
            setpriv --bounding-set -net_admin --inh-caps -net_admin $PROXY --config intercept.json --admin off > serve.log 2>&1; echo "serve exit $?"
            setpriv --bounding-set -net_admin --inh-caps -net_admin $PROXY check --config intercept.json > check.log 2>&1; echo "check exit $?"
            echo "tables: [$(nft list tables)]"
            """, Timeout);

        Assert.True(exitCode == 0, $"script failed ({exitCode}):\n{stdout}\n{stderr}\n{run.Logs()}");
        var context = $"{stdout}\n{run.Logs()}";
        Assert.True(stdout.Contains("serve exit 1", StringComparison.Ordinal), context);
        Assert.True(stdout.Contains("check exit 1", StringComparison.Ordinal), context);
        Assert.Contains("tables: []", stdout, StringComparison.Ordinal);
        foreach (var file in new[] { "serve.log", "check.log" })
        {
            var message = run.Read(file);
            Assert.StartsWith("error: route 'clients': Intercept: the rules cannot be installed: this process lacks CAP_NET_ADMIN, which installing nftables rules needs (this process runs as uid 0 without it).", message, StringComparison.Ordinal);
            Assert.Contains("run the proxy as root (sudo) or sudo setcap cap_net_admin+ep", message, StringComparison.Ordinal);
            Assert.Contains("without interception, give the route an Upstream instead and point its clients at its Listen", message, StringComparison.Ordinal);
            Assert.Single(message.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.DoesNotContain("   at ", message, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// A client that connects to an intercepting route's listener itself, not through a redirect.
    /// The proxy's NAT rules make conntrack track every connection of the namespace, so the kernel
    /// gives this one an original destination too: the listener itself. Forwarding it there would
    /// loop; it is closed with a line saying why.
    /// </summary>
    [Fact]
    public async Task A_client_that_connects_to_the_listener_itself_is_closed_instead_of_looped()
    {
        using var run = NamespaceRun.Require();
        await File.WriteAllTextAsync(Path.Combine(run.Directory, "intercept.json"), """
            { "BindProxy": { "Routes": { "direct": { "Listen": "127.0.0.1:0", "Source": "127.0.0.7", "Intercept": { "Ports": "9000", "Uid": 65534 } } } } }
            """);
        var (exitCode, stdout, stderr) = await run.RunAsync("""
            $PROXY --config intercept.json --admin off > proxy.log 2>&1 & proxy=$!
            trap 'kill $proxy 2>/dev/null' EXIT
            wait_for proxy.log 'Route direct: table inet' || exit 20
            port=$(sed -n 's/.*Route direct listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' proxy.log | head -n 1)
            exec 3<>/dev/tcp/127.0.0.1/$port
            echo "tracked: [$(grep -c " dport=$port " /proc/net/nf_conntrack)]"
            wait_for proxy.log 'directly, not through a redirect' || exit 21
            if read -r -t 10 _ <&3; then echo "read: data"; else echo "read: closed"; fi
            """, Timeout);

        Assert.True(exitCode == 0, $"script failed ({exitCode}):\n{stdout}\n{stderr}\n{run.Logs()}");
        var context = $"{stdout}\n{run.Logs()}";
        Assert.True(stdout.Contains("tracked: [1]", StringComparison.Ordinal), context);
        Assert.True(stdout.Contains("read: closed", StringComparison.Ordinal), context);
        Assert.Matches(@"direct: 127\.0\.0\.1:\d+ connected to 127\.0\.0\.1:\d+ directly, not through a redirect; closed", run.Read("proxy.log"));
        Assert.DoesNotContain("direct: intercepted ", run.Read("proxy.log"), StringComparison.Ordinal);
    }

    [GeneratedRegex(@"^table: \[(.*)\]$", RegexOptions.Multiline)]
    private static partial Regex TableLine();

    [GeneratedRegex(@"^table after reload: \[(.*)\]$", RegexOptions.Multiline)]
    private static partial Regex TableAfterReloadLine();
}
