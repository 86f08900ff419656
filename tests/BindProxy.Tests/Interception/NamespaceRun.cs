using System.Diagnostics;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Interception;

/// <summary>
/// A bash script run in a private network and mount namespace (<c>unshare -n -m</c>) with
/// <c>lo</c> up and a cgroup v2 hierarchy mounted at <c>/sys/fs/cgroup</c>, so the nftables rules,
/// cgroups and traffic of a test stay inside it. The script's files live in <see cref="Directory"/>.
/// </summary>
internal sealed class NamespaceRun : IDisposable
{
    public static readonly string ProxyDll = Path.Combine(AppContext.BaseDirectory, "BindProxy.dll");
    public static readonly string DemoDll = Path.Combine(AppContext.BaseDirectory, "BindProxy.Demo.dll");

    private readonly string _unshare;

    private NamespaceRun(string unshare)
    {
        _unshare = unshare;
        Directory = Path.Combine(Path.GetTempPath(), "bindproxy-exec-" + Guid.NewGuid().ToString("n"));
        System.IO.Directory.CreateDirectory(Directory);
    }

    public string Directory { get; }

    /// <summary>Skips (or fails under BINDPROXY_REQUIRE_ALL) unless root with unshare, ip, nft and the named tools.</summary>
    public static NamespaceRun Require(params string[] tools)
    {
        ExternalTool.RequireRoot("network namespaces and nftables");
        var unshare = ExternalTool.Require("unshare");
        foreach (var tool in new[] { "ip", "nft" }.Concat(tools))
        {
            if (ExternalTool.Find(tool) is null && !File.Exists($"/usr/sbin/{tool}"))
            {
                ExternalTool.Unavailable($"'{tool}' is not installed (Debian package: {Package(tool)})");
            }
        }

        return new NamespaceRun(unshare);
    }

    /// <summary>
    /// The lines every script starts with: lo up, cgroup2 at /sys/fs/cgroup, PROXY and DEMO
    /// commands, <c>wait_for FILE TEXT</c> (up to 60 s: the machine may be busy), and
    /// <c>echo_server BENCH_DLL PORT</c> (the load tool's echo server on 127.0.0.1:PORT, stopped when the script exits),
    /// and <c>mock_cluster</c> (3 brokers, topic exec-test in 3 partitions; sets <c>$cluster</c>, <c>$bootstrap</c>,
    /// <c>$first</c>, and fd 3 for its commands).
    /// </summary>
    public string Prelude => $$"""
        {{Lines}}
        mount -t cgroup2 none /sys/fs/cgroup

        """;

    /// <summary>The prelude without mounting cgroup2: the machine's own layout (hybrid systems have it at /sys/fs/cgroup/unified).</summary>
    public string Lines => $$"""
        set -u
        export PATH="$PATH:/usr/sbin:/sbin"
        cd '{{Directory}}'
        ip link set lo up
        PROXY="dotnet {{ProxyDll}}"
        DEMO="dotnet {{DemoDll}}"
        wait_for() { for _ in $(seq 1 600); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "timed out waiting for '$2' in $1" >&2; return 1; }
        mock_cluster() { mkfifo cluster.in; $DEMO mock-cluster --brokers 3 --topic exec-test --partitions 3 < cluster.in > cluster.out 2> cluster.log & cluster=$!; exec 3> cluster.in; wait_for cluster.out '^bootstrap' || return 1; bootstrap=$(sed -n 's/^bootstrap //p' cluster.out); first=${bootstrap%%,*}; }
        echo_server() { dotnet "$1" echo-server --listen "127.0.0.1:$2" 2> "server-$2.log" & servers="${servers:-} $!"; trap 'kill $servers 2>/dev/null' EXIT; wait_for "server-$2.log" 'listening on'; }

        """;

    /// <summary>Runs <paramref name="script"/> (after <see cref="Prelude"/>) and returns its exit code, stdout and stderr.</summary>
    /// <param name="ownCgroupLayout">Leave the machine's cgroup mounts as they are instead of mounting cgroup2 at /sys/fs/cgroup.</param>
    public async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string script, TimeSpan timeout, bool ownCgroupLayout = false)
    {
        var path = Path.Combine(Directory, "run.sh");
        await File.WriteAllTextAsync(path, (ownCgroupLayout ? Lines : Prelude) + script);
        var info = new ProcessStartInfo(_unshare, ["-n", "-m", "--propagation", "private", "bash", path])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        using var process = Process.Start(info)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            Assert.Fail($"the namespace script did not finish within {timeout}:\n{await stdout}\n{await stderr}\n{Logs()}");
        }

        var err = await stderr;
        if (process.ExitCode != 0 && err.Contains("unshare failed", StringComparison.Ordinal))
        {
            ExternalTool.Unavailable("unshare -n -m is not permitted here: " + err);
        }

        return (process.ExitCode, await stdout, err);
    }

    public string Read(string file) => File.Exists(Path.Combine(Directory, file)) ? File.ReadAllText(Path.Combine(Directory, file)) : "";

    /// <summary>Every .log file of the run, for failure messages.</summary>
    public string Logs() => string.Join("\n", System.IO.Directory.EnumerateFiles(Directory, "*.log").Order()
        .Select(f => $"--- {Path.GetFileName(f)}\n{File.ReadAllText(f)}"));

    public void Dispose()
    {
        // For looking at a failed run's files (capture, logs) afterwards.
        if (Environment.GetEnvironmentVariable("BINDPROXY_KEEP_NAMESPACE_RUNS") == "1")
        {
            return;
        }

        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static string Package(string tool) => tool switch
    {
        "nft" => "nftables",
        "ip" => "iproute2",
        "setpriv" or "unshare" => "util-linux",
        "ss" => "iproute2",
        _ => tool,
    };
}
