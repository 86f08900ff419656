using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Cli;

/// <summary>The real executable as a child process.</summary>
public sealed class CliTests
{
    private static Process Start(string workingDirectory, params string[] args) => BindProxyCli.Start(workingDirectory, null, args);

    private static Task<(int Exit, string Out, string Err)> RunAsync(string workingDirectory, params string[] args) => BindProxyCli.RunAsync(workingDirectory, args);

    private static string TempDir() => BindProxyCli.TempDir();

    [Fact]
    public async Task Quick_mode_serves_one_route_end_to_end()
    {
        await using var upstream = TestServer.Echo();
        using var process = Start(TempDir(), "--listen", "127.0.0.1:0", "--upstream", upstream.Address, "--source", "127.0.0.9");
        try
        {
            // The proxy logs the port it bound; read it from stdout.
            IPEndPoint? endpoint = null;
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            while (endpoint is null)
            {
                var line = await process.StandardOutput.ReadLineAsync(cts.Token) ?? throw new InvalidOperationException("proxy exited: " + await process.StandardError.ReadToEndAsync());
                const string marker = "Route cli listening on ";
                int at = line.IndexOf(marker, StringComparison.Ordinal);
                if (at >= 0)
                {
                    endpoint = IPEndPoint.Parse(line[(at + marker.Length)..].Trim());
                }
            }

            using var client = await SocketExtensions.ConnectAsync(endpoint);
            await client.SendAsync("quick"u8.ToArray());
            Assert.Equal("quick"u8.ToArray(), await client.ReadExactlyAsync(5));
            Assert.True(upstream.Accepted.TryPeek(out var seen));
            Assert.Equal(IPAddress.Parse("127.0.0.9"), seen.Address);
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task Check_reports_every_config_error_and_exits_non_zero()
    {
        var dead = TestAddresses.Unassigned(1)[0];
        var dir = TempDir();
        await File.WriteAllTextAsync(Path.Combine(dir, "bad.json"), $$"""
            {
              "BindProxy": {
                "Routes": {
                  "one": { "Listen": "127.0.0.1:70000", "Upstream": "localhost:9092", "Source": "127.0.0.2" },
                  "two": { "Listen": "127.0.0.1:19092", "Upstream": "localhost", "Source": "{{dead}}" }
                }
              }
            }
            """);
        var (exit, _, err) = await RunAsync(dir, "check", "--config", "bad.json");

        Assert.Equal(1, exit);
        Assert.Contains("the configuration has 3 problem(s)", err, StringComparison.Ordinal);
        Assert.Contains("route 'one': Listen: '127.0.0.1:70000' has port 70000", err, StringComparison.Ordinal);
        Assert.Contains("route 'two': Upstream: 'localhost' has no port", err, StringComparison.Ordinal);
        Assert.Contains($"route 'two': Source: {dead} is not assigned to this machine", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_accepts_a_good_file_and_prints_the_wireshark_filter()
    {
        var dir = TempDir();
        await File.WriteAllTextAsync(Path.Combine(dir, "appsettings.json"), """
            { "BindProxy": { "Routes": { "db": { "Listen": "127.0.0.1:15432", "Upstream": "127.0.0.1:5432", "Source": "127.0.0.2-127.0.0.3" } } } }
            """);
        var (exit, output, err) = await RunAsync(dir, "check");

        Assert.True(exit == 0, err);
        Assert.Contains("route 'db': 127.0.0.1:15432 → 127.0.0.1:5432", output, StringComparison.Ordinal);
        Assert.Contains("Wireshark: ip.addr in {127.0.0.2..127.0.0.3} && tcp.port==5432", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_config_file_is_an_error()
    {
        var (exit, _, err) = await RunAsync(TempDir(), "check", "--config", "nope.json");
        Assert.Equal(1, exit);
        Assert.Contains("nope.json does not exist", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invalid_json_is_an_error_that_says_so()
    {
        var dir = TempDir();
        await File.WriteAllTextAsync(Path.Combine(dir, "broken.json"), "{ \"BindProxy\": ");
        var (exit, _, err) = await RunAsync(dir, "check", "--config", "broken.json");
        Assert.Equal(1, exit);
        Assert.Contains("is not valid JSON", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_documents_the_quick_mode_and_check()
    {
        var (exit, output, _) = await RunAsync(TempDir(), "--help");
        Assert.Equal(0, exit);
        foreach (var word in new[] { "--config", "--listen", "--upstream", "--source", "--protocol", "check" })
        {
            Assert.Contains(word, output, StringComparison.Ordinal);
        }
    }
}
