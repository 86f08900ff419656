using System.Text.RegularExpressions;
using BindProxy.Tests.Configuration;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Interception;

/// <summary>
/// <c>bindproxy exec</c> as a command: the command's stdin, stdout, stderr and exit code pass
/// through, its TCP connections are re-originated, the rules are gone after every way a run can
/// end, and without CAP_NET_ADMIN nothing runs. Each in a private network namespace.
/// </summary>
[Collection(ExecTestGroup.Name)]
public sealed class ExecCommandTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task The_commands_stdin_stdout_stderr_and_exit_code_pass_through_and_its_connection_is_reoriginated()
    {
        using var run = NamespaceRun.Require();
        var bench = BenchTool();
        var (exitCode, stdout, stderr) = await run.RunAsync($$"""
            echo_server '{{bench}}' 9000 || exit 20
            echo "hello through exec" | $PROXY exec --config '{{Path.Combine(ShippedConfigTests.RepositoryRoot(), "appsettings.json")}}' --source 127.0.0.7 --ports 9000-9001,8081 --admin off -- bash -c '
              read -r line; echo "got: $line"; echo "to stderr" >&2
              exec 3<>/dev/tcp/127.0.0.1/9000; echo ping >&3; read -r reply <&3; echo "reply: $reply"
              exit 7' > out.txt 2> exec.log
            echo "exit $?"
            echo "ruleset after: [$(nft list ruleset)]"
            """, Timeout);

        Assert.True(exitCode == 0, $"script failed ({exitCode}):\n{stdout}\n{stderr}\n{run.Logs()}");
        var context = $"{stdout}\n{run.Logs()}";
        Assert.Contains("exit 7", stdout, StringComparison.Ordinal);
        Assert.True(run.Read("out.txt") == "got: hello through exec\nreply: ping\n", $"stdout: [{run.Read("out.txt")}]\n{context}");
        var log = run.Read("exec.log");
        Assert.Contains("to stderr", log, StringComparison.Ordinal);
        Assert.Matches(@"intercepted pid \d+ \(bash -c .*\): 127\.0\.0\.1:\d+ → 127\.0\.0\.1:9000, re-originated from 127\.0\.0\.7:\d+", log);
        Assert.Contains("Wireshark: ip.addr==127.0.0.7 && tcp.port in {8081,9000..9001}; tshark -i lo -f 'host 127.0.0.7 and (tcp port 8081 or tcp portrange 9000-9001)'", log, StringComparison.Ordinal);
        Assert.Contains("exec: the command exited with code 7", log, StringComparison.Ordinal);
        Assert.Contains("ruleset after: []", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task On_the_machines_own_cgroup_layout_exec_intercepts_too()
    {
        using var run = NamespaceRun.Require();
        var bench = BenchTool();
        var (exitCode, stdout, stderr) = await run.RunAsync($$"""
            echo_server '{{bench}}' 9000 || exit 20
            echo "cgroup2 at: $(awk '$9 == "cgroup2" { print $5 }' /proc/self/mountinfo | tr '\n' ' ')"
            $PROXY exec --source 127.0.0.7 --ports 9000 --admin off -- bash -c '
              exec 3<>/dev/tcp/127.0.0.1/9000; echo ping >&3; read -r reply <&3; echo "reply: $reply"' > out.txt 2> exec.log
            echo "exit $?"
            echo "ruleset after: [$(nft list ruleset)]"
            """, Timeout, ownCgroupLayout: true);

        Assert.True(exitCode == 0, $"script failed ({exitCode}):\n{stdout}\n{stderr}\n{run.Logs()}");
        var context = $"{stdout}\n{run.Logs()}";
        if (stdout.Contains("cgroup2 at:  \n", StringComparison.Ordinal) || stdout.Contains("cgroup2 at: \n", StringComparison.Ordinal))
        {
            ExternalTool.Unavailable("this machine has no cgroup v2 hierarchy mounted");
        }

        Assert.True(stdout.Contains("exit 0", StringComparison.Ordinal), context);
        Assert.Equal("reply: ping\n", run.Read("out.txt"));
        var group = Regex.Match(run.Read("exec.log"), @"redirects TCP connections of cgroup (\S+) ");
        Assert.True(group.Success, context);
        Assert.False(Directory.Exists(group.Groups[1].Value), $"{group.Groups[1].Value} is left\n{context}");
        Assert.Matches(@"re-originated from 127\.0\.0\.7:\d+", run.Read("exec.log"));
        Assert.Contains("ruleset after: []", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task No_table_or_cgroup_remains_after_exit_after_SIGTERM_and_after_a_killed_run_and_the_next_start()
    {
        using var run = NamespaceRun.Require();
        var (exitCode, stdout, stderr) = await run.RunAsync("""
            EXEC="$PROXY exec --source 127.0.0.7 --ports 9000 --admin off --"
            tables() { nft list tables | tr '\n' ' '; }
            $EXEC true 2> exit.log; echo "after exit: $? [$(tables)]"

            $EXEC sleep 30 > /dev/null 2> term.log & p=$!
            wait_for term.log 'exec: started pid' || exit 20
            echo "during: [$(tables)]"
            kill -TERM $p; wait $p; echo "after SIGTERM: $? [$(tables)]"

            $EXEC sleep 30 > /dev/null 2> killed.log & p=$!
            wait_for killed.log 'exec: started pid' || exit 21
            kill -KILL $p; wait $p 2>/dev/null
            echo "killed: $p [$(tables)]"
            kill $(sed -n 's/.*exec: started pid \([0-9]*\).*/\1/p' killed.log)
            for _ in $(seq 1 100); do [ -z "$(cat /sys/fs/cgroup/bindproxy-$p/cgroup.procs)" ] && break; sleep 0.1; done
            $EXEC true 2> next.log; echo "next run: $? [$(tables)]"
            echo "groups: [$(ls /sys/fs/cgroup | grep bindproxy- | tr '\n' ' ')]"
            """, Timeout);

        Assert.True(exitCode == 0, $"script failed ({exitCode}):\n{stdout}\n{stderr}\n{run.Logs()}");
        var context = $"{stdout}\n{run.Logs()}";
        Assert.True(stdout.Contains("after exit: 0 []", StringComparison.Ordinal), context);
        Assert.Matches(@"during: \[table inet bindproxy_\d+ \]", stdout);
        Assert.True(stdout.Contains("after SIGTERM: 143 []", StringComparison.Ordinal), context); // sleep ends on the forwarded SIGTERM
        var killed = Regex.Match(stdout, @"killed: (\d+) \[table inet bindproxy_(\d+) \]");
        Assert.True(killed.Success && killed.Groups[1].Value == killed.Groups[2].Value, context);
        Assert.True(stdout.Contains("next run: 0 []", StringComparison.Ordinal), context);
        var next = run.Read("next.log");
        Assert.Contains($"removed table inet bindproxy_{killed.Groups[1].Value} left by process {killed.Groups[1].Value}, which no longer runs", next, StringComparison.Ordinal);
        Assert.Contains($"removed cgroup /sys/fs/cgroup/bindproxy-{killed.Groups[1].Value} left by process", next, StringComparison.Ordinal);
        Assert.Contains("groups: []", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_CAP_NET_ADMIN_exec_fails_before_the_command_runs_and_says_what_to_do()
    {
        using var run = NamespaceRun.Require("setpriv");
        var (exitCode, stdout, stderr) = await run.RunAsync("""
            setpriv --bounding-set -net_admin --inh-caps -net_admin $PROXY exec --source 127.0.0.7 --ports 9000 --admin off -- touch ran > out.txt 2> exec.log
            echo "exit $?"
            test -e ran && echo "the command ran"
            echo "tables: [$(nft list tables)] groups: [$(ls /sys/fs/cgroup | grep bindproxy-)]"
            """, Timeout);

        Assert.True(exitCode == 0, $"script failed ({exitCode}):\n{stdout}\n{stderr}\n{run.Logs()}");
        var context = $"{stdout}\n{run.Logs()}";
        Assert.True(stdout.Contains("exit 125", StringComparison.Ordinal), context);
        Assert.DoesNotContain("the command ran", stdout, StringComparison.Ordinal);
        Assert.Contains("tables: [] groups: []", stdout, StringComparison.Ordinal);
        var message = run.Read("exec.log");
        Assert.Contains("error: bindproxy exec cannot intercept the command's connections: CAP_NET_ADMIN", message, StringComparison.Ordinal);
        Assert.Contains("sudo bindproxy exec", message, StringComparison.Ordinal);
        Assert.Contains("setcap cap_net_admin+ep", message, StringComparison.Ordinal);
        Assert.Contains("bindproxy --listen 127.0.0.1:19092 --upstream HOST:9000 --source 127.0.0.7", message, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", message, StringComparison.Ordinal); // one message, no stack trace
        Assert.Empty(run.Read("out.txt"));
    }

    [Fact]
    public async Task The_admin_api_shows_an_intercepted_connections_original_destination_and_process()
    {
        using var run = NamespaceRun.Require();
        var bench = BenchTool();
        var (exitCode, stdout, stderr) = await run.RunAsync($$"""
            echo_server '{{bench}}' 9000 || exit 20
            $PROXY exec --source 127.0.0.7 --ports 9000 --admin 127.0.0.1:9901 -- bash -c '
              exec 3<>/dev/tcp/127.0.0.1/9000; echo ping >&3; read -r reply <&3
              exec 4<>/dev/tcp/127.0.0.1/9901; printf "GET /api/connections HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&4; cat <&4' > api.txt 2> exec.log
            echo "exit $?"
            """, Timeout);

        Assert.True(exitCode == 0, $"script failed ({exitCode}):\n{stdout}\n{stderr}\n{run.Logs()}");
        var api = run.Read("api.txt");
        Assert.StartsWith("HTTP/1.1 200 OK", api, StringComparison.Ordinal); // the proxy's log lines are on stderr
        Assert.Contains("\"originalDestination\":\"127.0.0.1:9000\"", api, StringComparison.Ordinal);
        Assert.Matches("\"clientPid\":\\d+", api);
        Assert.Contains("\"clientCommand\":\"bash -c ", api, StringComparison.Ordinal);
        Assert.Matches("\"source\":\"127\\.0\\.0\\.7:\\d+\"", api);
        Assert.Contains("\"upstream\":\"127.0.0.1:9000\"", api, StringComparison.Ordinal);
    }

    /// <summary>
    /// The admin endpoint is a convenience under exec: with its port held by another process (the
    /// shipped file's 127.0.0.1:9901, or --admin) exec says so in one line and runs the command.
    /// </summary>
    [Fact]
    public async Task With_the_admin_port_held_by_another_process_exec_says_so_in_one_line_and_runs_the_command()
    {
        using var run = NamespaceRun.Require();
        var bench = BenchTool();
        var shipped = Path.Combine(ShippedConfigTests.RepositoryRoot(), "appsettings.json");
        var (exitCode, stdout, stderr) = await run.RunAsync($$"""
            echo_server '{{bench}}' 9000 || exit 20
            echo_server '{{bench}}' 9901 || exit 21
            CONNECT='exec 3<>/dev/tcp/127.0.0.1/9000; echo ping >&3; read -r reply <&3; echo "reply: $reply"; exit 7'
            $PROXY exec --config '{{shipped}}' --source 127.0.0.7 --ports 9000 -- bash -c "$CONNECT" > file.out 2> file.log; echo "file: $?"
            $PROXY exec --source 127.0.0.7 --ports 9000 --admin 127.0.0.1:9901 -- bash -c "$CONNECT" > flag.out 2> flag.log; echo "flag: $?"
            """, Timeout);

        Assert.True(exitCode == 0, $"script failed ({exitCode}):\n{stdout}\n{stderr}\n{run.Logs()}");
        var context = $"{stdout}\n{run.Logs()}";
        foreach (var way in new[] { "file", "flag" })
        {
            Assert.True(stdout.Contains($"{way}: 7", StringComparison.Ordinal), context);
            Assert.Equal("reply: ping\n", run.Read($"{way}.out"));
            var log = run.Read($"{way}.log");
            var admin = log.Split('\n').Where(l => l.Contains("9901", StringComparison.Ordinal)).ToList();
            Assert.True(admin.Count == 1, $"{way}: expected one line about the admin port:\n{log}");
            Assert.Matches(@"^warning: Admin:Listen: 127\.0\.0\.1:9901 is in use by pid \d+ \(.*BindProxy\.Bench.*\); exec runs the command without the admin endpoint$", admin[0]);
            Assert.DoesNotContain("   at ", log, StringComparison.Ordinal);
            Assert.DoesNotContain("Unhandled exception", log, StringComparison.Ordinal);
            Assert.Matches(@"re-originated from 127\.0\.0\.7:\d+", log);
        }
    }

    [Theory]
    [InlineData(new[] { "--source", "127.0.0.7", "--", "true" }, "error: nothing to intercept: give --ports (9092-9094,8081) or --kafka BOOTSTRAP")]
    [InlineData(new[] { "--source", "127.0.0.7", "--ports", "9092-9090", "--", "true" }, "error: --ports: '9092-9090' ends before it starts")]
    [InlineData(new[] { "--source", "127.0.0.7", "--kafka", "localhost:9092", "--protocol", "tcp", "--", "true" }, "error: --kafka is a Kafka bootstrap, but --protocol is tcp")]
    [InlineData(new[] { "--source", "198.51.100.10", "--ports", "9092", "--", "true" }, "--source: 198.51.100.10 is not assigned to this machine")]
    public async Task Bad_options_are_one_line_each_and_exit_1_before_anything_starts(string[] args, string message)
    {
        var dir = Path.Combine(Path.GetTempPath(), "bindproxy-exec-args-" + Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(dir);
        await using var proxy = ProxyProcess.Start(dir, ["exec", "--admin", "off", .. args]);
        int exitCode = await proxy.WaitForExitAsync(TimeSpan.FromSeconds(30));
        var output = string.Join("\n", proxy.Lines);
        Assert.True(exitCode == 1, output);
        Assert.Contains(message, output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
        Directory.Delete(dir, recursive: true);
    }

    internal static string BenchTool()
    {
        var configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name;
        var path = Path.Combine(ShippedConfigTests.RepositoryRoot(), "bench", "BindProxy.Bench", "bin", configuration, "net10.0", "BindProxy.Bench.dll");
        if (!File.Exists(path))
        {
            ExternalTool.Unavailable($"the load tool is not built ({path}); run dotnet build BindProxy.sln");
        }

        return path;
    }
}
