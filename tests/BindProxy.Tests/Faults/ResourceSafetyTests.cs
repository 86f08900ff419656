using System.Globalization;
using System.Net;
using System.Net.Sockets;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Faults;

/// <summary>Opening and closing many connections through the proxy leaves nothing behind.</summary>
/// <remarks>Runs alone: its 100,000 connections load the machine and fill the kernel's socket table.</remarks>
[Collection(nameof(Admin.RunsAlone))]
public sealed class ResourceSafetyTests
{
    private const int Connections = 100_000;
    private const int Workers = 32;

    [Fact]
    public async Task A_hundred_thousand_connections_leave_descriptors_and_memory_near_the_baseline()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "reads /proc/PID for descriptors and RSS");
        await using var upstream = TestServer.Echo();
        var dir = Path.Combine(Path.GetTempPath(), "bindproxy-leak-" + Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(dir);
        await File.WriteAllTextAsync(Path.Combine(dir, "appsettings.json"),
            $$"""{ "BindProxy": { "Routes": { "r": { "Listen": "127.0.0.1:0", "Upstream": "{{upstream.Address}}", "Source": "127.0.0.2-127.0.0.9" } } }, "Serilog": { "MinimumLevel": { "Default": "Warning", "Override": { "BindProxy.Transport": "Information" } }, "WriteTo": [ { "Name": "Console" } ] } }""");
        await using var proxy = ProxyProcess.Start(dir);
        var endpoint = await proxy.ListeningAsyncAny(TimeSpan.FromSeconds(30));

        // Warm up (JIT, pools), then take the baseline.
        await ChurnAsync(endpoint, 2_000);
        var (fdsBefore, rssBefore) = await SettledAsync(proxy.Id);

        int failed = await ChurnAsync(endpoint, Connections);
        var (fdsAfter, rssAfter) = await SettledAsync(proxy.Id);

        TestContext.Current.TestOutputHelper?.WriteLine($"{Connections} connections ({failed} failed): fds {fdsBefore} → {fdsAfter}, RSS {rssBefore / 1024} → {rssAfter / 1024} MiB");
        Assert.Equal(0, failed);
        Assert.InRange(fdsAfter - fdsBefore, -8, 8);
        Assert.InRange(rssAfter - rssBefore, long.MinValue, 48 * 1024);
        Directory.Delete(dir, recursive: true);
    }

    /// <summary>Connect, one 8-byte exchange, close; <paramref name="count"/> times over <see cref="Workers"/> workers.</summary>
    private static async Task<int> ChurnAsync(IPEndPoint endpoint, int count)
    {
        int next = 0, failed = 0;
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(4);
        await Task.WhenAll(Enumerable.Range(0, Workers).Select(async worker =>
        {
            var payload = new byte[8];
            var buffer = new byte[8];
            while (Interlocked.Increment(ref next) <= count && DateTime.UtcNow < deadline)
            {
                try
                {
                    using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                    using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                    await socket.ConnectAsync(endpoint, cts.Token);
                    await socket.SendAsync(payload, SocketFlags.None, cts.Token);
                    int read = 0;
                    while (read < buffer.Length)
                    {
                        int n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, cts.Token);
                        if (n == 0)
                        {
                            throw new EndOfStreamException();
                        }

                        read += n;
                    }
                }
                catch (Exception e) when (e is SocketException or OperationCanceledException or EndOfStreamException)
                {
                    Interlocked.Increment(ref failed);
                }
            }
        }));
        Assert.True(DateTime.UtcNow < deadline, "the churn did not finish in time");
        return failed;
    }

    /// <summary>Descriptor count and RSS (KiB) of the process once connections have wound down (its descriptor count steady for 200 ms).</summary>
    private static async Task<(int Fds, long RssKb)> SettledAsync(int pid)
    {
        int fds = await Poll.SteadyAsync(() => Directory.GetFileSystemEntries($"/proc/{pid}/fd").Length, TimeSpan.FromMilliseconds(200),
            "the proxy's descriptor count to settle", TimeSpan.FromSeconds(10));
        var rss = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return (fds, long.Parse(rss.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture));
    }
}
