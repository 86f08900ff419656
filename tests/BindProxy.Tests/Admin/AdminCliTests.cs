using System.Diagnostics;
using System.Net;

namespace BindProxy.Tests.Admin;

/// <summary><c>--admin</c> on the real executable, as a child process.</summary>
public sealed class AdminCliTests
{
    private static readonly string ProxyDll = Path.Combine(AppContext.BaseDirectory, "BindProxy.dll");

    private static Process Start(params string[] args)
    {
        var dir = Path.Combine(Path.GetTempPath(), "bindproxy-admin-cli-" + Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(dir);
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir };
        info.ArgumentList.Add(ProxyDll);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        return Process.Start(info)!;
    }

    private static async Task<(int Exit, string Out, string Err)> RunAsync(params string[] args)
    {
        using var process = Start(args);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        return (process.ExitCode, await stdout, await stderr);
    }

    private static readonly string[] QuickRoute = ["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9", "--source", "127.0.0.2"];

    [Fact]
    public async Task Check_with_a_non_loopback_admin_address_fails_with_the_reason()
    {
        var (exit, _, err) = await RunAsync(["check", .. QuickRoute, "--admin", "0.0.0.0:9901"]);
        Assert.Equal(1, exit);
        Assert.Contains("Admin:Listen: 0.0.0.0:9901 is not a loopback address", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_prints_the_admin_address()
    {
        // A free port of its own: 9901 may be a running proxy's (and is, during the suite: DefaultPortsHeld).
        int port;
        using (var probe = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp))
        {
            probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            port = ((IPEndPoint)probe.LocalEndPoint!).Port;
        }

        var (exit, output, err) = await RunAsync(["check", .. QuickRoute, "--admin", $"127.0.0.1:{port}"]);
        Assert.True(exit == 0, err);
        Assert.Contains($"admin endpoint: http://127.0.0.1:{port}/", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serving_with_admin_logs_its_address_and_answers_there()
    {
        using var process = Start([.. QuickRoute, "--admin", "127.0.0.1:0"]);
        try
        {
            Uri? url = null;
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            while (url is null)
            {
                var line = await process.StandardOutput.ReadLineAsync(cts.Token)
                    ?? throw new InvalidOperationException("proxy exited: " + await process.StandardError.ReadToEndAsync());
                const string marker = "Admin endpoint on ";
                int at = line.IndexOf(marker, StringComparison.Ordinal);
                if (at >= 0)
                {
                    var rest = line[(at + marker.Length)..];
                    url = new Uri(rest[..rest.IndexOf('/', "http://".Length)] + "/");
                }
            }

            Assert.True(IPAddress.IsLoopback(IPAddress.Parse(url.Host)));
            using var http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromSeconds(10) };
            Assert.Equal("ok\n", await http.GetStringAsync("healthz"));
            Assert.Contains("\"name\":\"cli\"", await http.GetStringAsync("api/routes"), StringComparison.Ordinal);
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
    }
}
