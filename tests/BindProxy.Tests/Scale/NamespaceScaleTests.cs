using System.Diagnostics;
using System.Text.Json;
using BindProxy.Tests.Configuration;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Scale;

/// <summary>
/// The ephemeral-port wall, reproduced small: in a private network namespace whose
/// <c>ip_local_port_range</c> holds 250 ports, direct connections from one address to one server
/// address stop at about 250 with EADDRNOTAVAIL, while through the proxy (5 listen addresses × 5
/// source addresses) 1000 connections are established and carry data both ways.
/// </summary>
public sealed class NamespaceScaleTests
{
    private const int Ports = 250;

    [Fact]
    public async Task The_proxy_spreads_past_one_address_pairs_ephemeral_ports()
    {
        ExternalTool.RequireRoot("creating a network namespace");
        var unshare = ExternalTool.Require("unshare");
        ExternalTool.Require("ip");
        var bench = BenchTool();

        var dir = Path.Combine(Path.GetTempPath(), "bindproxy-netns-" + Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(dir);
        var proxyDll = Path.Combine(AppContext.BaseDirectory, "BindProxy.dll");
        var listen = string.Join(",", Enumerable.Range(10, 5).Select(i => $"127.0.0.{i}:9000"));
        var script = $$"""
            set -eu
            cd '{{dir}}'
            ip link set lo up
            echo "40000 {{40000 + Ports - 1}}" > /proc/sys/net/ipv4/ip_local_port_range
            dotnet '{{bench}}' echo-server --listen 127.0.0.1:8000 2> server.log &
            server=$!
            dotnet '{{proxyDll}}' --listen 127.0.0.10-127.0.0.14:9000 --upstream 127.0.0.1:8000 --source 127.0.0.2-127.0.0.6 > proxy.log 2>&1 &
            proxy=$!
            trap 'kill $server $proxy 2>/dev/null || true' EXIT
            for i in $(seq 1 150); do
              if grep -q 'listening on' server.log && [ "$(grep -c 'listening on' proxy.log)" -ge 5 ]; then break; fi
              sleep 0.2
            done
            dotnet '{{bench}}' hold --targets 127.0.0.1:8000 --count 400 --hold 1s --timeout 5s > direct.json 2> direct.err || true
            dotnet '{{bench}}' hold --targets {{listen}} --count 1000 --interval 500ms --bytes 16 --hold 2s --timeout 10s --pid $proxy > proxied.json 2> proxied.err || true
            """;
        await File.WriteAllTextAsync(Path.Combine(dir, "run.sh"), script);

        var info = new ProcessStartInfo(unshare, ["-n", "bash", Path.Combine(dir, "run.sh")]) { RedirectStandardError = true, RedirectStandardOutput = true };
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardOutput.ReadToEndAsync().WaitAsync(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(3));
        if (process.ExitCode != 0 && (await stderr).Contains("Operation not permitted", StringComparison.Ordinal))
        {
            ExternalTool.Unavailable("unshare -n is not permitted here: " + await stderr);
        }

        Assert.True(process.ExitCode == 0, $"namespace script failed ({process.ExitCode}): {await stderr}\n{Read(dir, "proxy.log")}");

        using var direct = JsonDocument.Parse(LastLine(dir, "direct.json"));
        using var proxied = JsonDocument.Parse(LastLine(dir, "proxied.json"));
        int directEstablished = direct.RootElement.GetProperty("established").GetInt32();
        var directFailures = direct.RootElement.GetProperty("failures").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32());

        // Direct: the one address pair runs out of ports at the range size, with EADDRNOTAVAIL.
        Assert.InRange(directEstablished, Ports - 10, Ports);
        Assert.Contains(directFailures, f => f.Key.Contains("AddressNotAvailable", StringComparison.Ordinal) && f.Value >= 400 - Ports - 10);

        // Through the proxy: all 1000 established, echo-verified, and exchanging data while held.
        var root = proxied.RootElement;
        Assert.True(root.GetProperty("established").GetInt32() == 1000, LastLine(dir, "proxied.json") + Read(dir, "proxied.err"));
        Assert.Equal(1000, root.GetProperty("verified").GetInt32());
        Assert.Equal(1000, root.GetProperty("held_at_end").GetInt32());
        Assert.True(root.GetProperty("traffic_ok").GetInt64() >= 1000, "no periodic traffic went through");
        Assert.Equal(0, root.GetProperty("traffic_failed").GetInt32());

        // And the proxy spread its upstream connections over all five sources.
        var proxyLog = Read(dir, "proxy.log");
        Assert.Contains("ephemeral ports for 1250 upstream connections (5 source × 1 destination address(es) × 250 ports)", proxyLog, StringComparison.Ordinal);
        Directory.Delete(dir, recursive: true);
    }

    private static string BenchTool()
    {
        // Built by `dotnet test BindProxy.sln` alongside the tests, in the same configuration.
        var configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name;
        var path = Path.Combine(ShippedConfigTests.RepositoryRoot(), "bench", "BindProxy.Bench", "bin", configuration, "net10.0", "BindProxy.Bench.dll");
        if (!File.Exists(path))
        {
            ExternalTool.Unavailable($"the load tool is not built ({path}); run dotnet build BindProxy.sln");
        }

        return path;
    }

    private static string Read(string dir, string file) => File.Exists(Path.Combine(dir, file)) ? File.ReadAllText(Path.Combine(dir, file)) : $"({file} missing)";

    private static string LastLine(string dir, string file) =>
        Read(dir, file).Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? "{}";
}
