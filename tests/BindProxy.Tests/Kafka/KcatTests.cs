using System.Diagnostics;
using System.Text.RegularExpressions;
using BindProxy.Demo;
using BindProxy.Kafka.Brokers;
using BindProxy.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace BindProxy.Tests.Kafka;

/// <summary>
/// Debian's kcat (librdkafka 2.0: Metadata v4 and the other classic, non-flexible encodings)
/// through the proxy. It runs in its own process with its own librdkafka, so it does not
/// disturb the bundled one this process loaded.
/// </summary>
public sealed partial class KcatTests
{
    private const string Topic = "kcat-topic";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Kcat_lists_the_proxy_as_every_broker_then_produces_and_consumes_through_it()
    {
        var kcat = ExternalTool.Require("kcat");
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(3);
        cluster.CreateTopicLedByEachBroker(Topic, 3, 1);

        await using var proxy = await KafkaRoute.StartProxyAsync(cluster);
        var bootstrap = proxy.Endpoint(KafkaRoute.Name).ToString();

        var list = await RunAsync(kcat, null, "-b", bootstrap, "-L", "-t", Topic);
        var directory = proxy.Services.GetRequiredService<BrokerDirectories>().All[KafkaRoute.Name];
        var listed = BrokerLine().Matches(list).Select(m => (Id: int.Parse(m.Groups["id"].Value), Address: m.Groups["address"].Value)).OrderBy(b => b.Id).ToList();
        Assert.Equal([1, 2, 3], listed.Select(b => b.Id));
        Assert.Equal(directory.Brokers.Select(b => $"127.0.0.1:{b.ProxyPort}"), listed.Select(b => b.Address));
        Assert.All(KafkaRoute.BrokerPorts(cluster), port => Assert.DoesNotContain($":{port}", list));

        var lines = Enumerable.Range(0, 30).Select(i => $"key-{i}:kcat message {i}").ToList();
        await RunAsync(kcat, string.Join('\n', lines) + "\n", "-b", bootstrap, "-P", "-t", Topic, "-K", ":", "-X", "acks=all");

        var consumed = await RunAsync(kcat, null, "-b", bootstrap, "-C", "-t", Topic, "-o", "beginning", "-e", "-q", "-f", "%k:%s\\n");
        Assert.Equal(lines.Order(), consumed.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order());

        // kcat reached each partition's leader through that broker's listener, from the source address.
        foreach (var broker in new[] { "broker-1", "broker-2", "broker-3" })
        {
            await proxy.Logs.WaitForAsync(TimeSpan.FromSeconds(10), $"{KafkaRoute.Name}/{broker}: ", "→ 127.0.0.2:", "closed", "client.id rdkafka");
        }

        var opened = proxy.Logs.Messages.Where(m => m.EndsWith(" ms)", StringComparison.Ordinal) && m.Contains(" open (connect ", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(opened);
        Assert.All(opened, m => Assert.Contains(" → 127.0.0.2:", m));
    }

    internal static async Task<string> RunAsync(string kcat, string? stdin, params string[] args)
    {
        var info = new ProcessStartInfo(kcat)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin).WaitAsync(Timeout);
        }

        process.StandardInput.Close();
        try
        {
            await process.WaitForExitAsync().WaitAsync(Timeout);
        }
        catch (TimeoutException)
        {
            process.Kill();
            throw new TimeoutException($"kcat {string.Join(' ', args)} still running after {Timeout}");
        }

        Assert.True(process.ExitCode == 0, $"kcat {string.Join(' ', args)} exited {process.ExitCode}: {await stderr.WaitAsync(Timeout)}");
        return await stdout.WaitAsync(Timeout);
    }

    // "  broker 2 at 127.0.0.1:40123" (with " (controller)" on one of them)
    [GeneratedRegex(@"^\s+broker (?<id>\d+) at (?<address>\S+)", RegexOptions.Multiline)]
    private static partial Regex BrokerLine();
}
