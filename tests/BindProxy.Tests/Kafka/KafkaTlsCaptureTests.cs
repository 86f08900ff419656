using BindProxy.Configuration;
using BindProxy.Tests.Capture;
using BindProxy.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace BindProxy.Tests.Kafka;

/// <summary>A capture of a Tls route: its broker legs are TLS on the wire and plaintext Kafka in the capture, and a comment says so.</summary>
public sealed partial class KafkaTlsTests
{
    [Fact]
    public async Task A_capture_of_a_Tls_route_shows_Kafka_in_plaintext_on_the_broker_legs_and_says_they_were_decrypted()
    {
        var kcat = ExternalTool.Require("kcat");
        await using var fixture = await TlsCluster.StartAsync(2);
        await using var proxy = await TestProxy.StartAsync(new ProxyConfig
        {
            Admin = new AdminConfig { Listen = "127.0.0.1:0" },
            Routes =
            [
                new RouteConfig
                {
                    Name = KafkaRoute.Name,
                    Listen = "127.0.0.1:0",
                    Upstream = fixture.Bootstrap,
                    Source = KafkaRoute.Source,
                    Protocol = "Kafka",
                    Tls = new Dictionary<string, string?> { ["CaFile"] = fixture.Certificates.CaFile },
                },
            ],
        });
        var admin = proxy.Services.GetRequiredService<BindProxy.Admin.AdminEndpoint>().BoundEndPoint!;
        var bootstrap = proxy.Endpoint(KafkaRoute.Name).ToString();

        await using var capture = await LiveCapture.StartAsync(admin, $"route={KafkaRoute.Name}");
        var lines = Enumerable.Range(0, 10).Select(i => $"key-{i}:captured {i}").ToList();
        await KcatTests.RunAsync(kcat, string.Join('\n', lines) + "\n", "-b", bootstrap, "-P", "-t", Topic, "-K", ":", "-X", "acks=all");
        await KcatTests.RunAsync(kcat, null, "-b", bootstrap, "-L", "-t", Topic);

        // Every connection kcat opened has closed, both legs, before the capture is read.
        await Poll.UntilAsync(() => proxy.Connections.Snapshot().Count == 0, "kcat's connections to close");
        await Poll.UntilAsync(() => capture.Packets().Count(p => p.Fin) >= 4, "the FINs in the capture");
        await capture.StopAsync();
        using var dir = new TempDirectory();
        var file = await capture.SaveAsync(dir.Path, "tls-route.pcapng");

        var tshark = ExternalTool.Require("tshark");
        var brokerPorts = fixture.Terminators.Select(t => t.Port).ToList();
        var decodeAs = brokerPorts.SelectMany(p => new[] { "-d", $"tcp.port=={p},kafka" }).ToArray();
        var portFilter = string.Join(" || ", brokerPorts.Select(p => $"tcp.dstport == {p}"));

        // The requests sent to the brokers (TLS on the wire) decode as Kafka: ApiVersions, Metadata, Produce.
        var requests = (await ExternalTool.RunAsync(tshark, ["-r", file, .. decodeAs, "-Y", $"kafka && ({portFilter})", "-T", "fields", "-E", "occurrence=a", "-e", "kafka.request_key"]))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).SelectMany(l => l.Split(',')).Select(int.Parse).ToHashSet();
        TestContext.Current.TestOutputHelper?.WriteLine($"api keys of requests on the broker legs: {string.Join(", ", requests.Order())}");
        Assert.Contains(18, requests); // ApiVersions
        Assert.Contains(3, requests); // Metadata
        Assert.Contains(0, requests); // Produce
        Assert.Empty(await Tshark.SequenceProblemsAsync(file));

        // Each broker leg's first packet says it was decrypted; the client legs (plaintext on the wire) do not.
        var comments = (await ExternalTool.RunAsync(tshark, "-r", file, "-Y", "frame.comment", "-T", "fields", "-e", "tcp.dstport", "-e", "frame.comment"))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')).ToList();
        var synToBrokers = (await ExternalTool.RunAsync(tshark, "-r", file, "-Y", $"tcp.flags.syn == 1 && tcp.flags.ack == 0 && ({portFilter})", "-T", "fields", "-e", "frame.number"))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(synToBrokers);
        var decrypted = comments.Where(c => c[1].Contains("decrypted from TLS", StringComparison.Ordinal)).ToList();
        TestContext.Current.TestOutputHelper?.WriteLine($"comments: {string.Join(" | ", decrypted.Select(c => c[1]).Distinct().Take(2))}");
        Assert.Equal(synToBrokers.Length, decrypted.Count);
        Assert.All(decrypted, c => Assert.Contains(int.Parse(c[0], System.Globalization.CultureInfo.InvariantCulture), brokerPorts));
        Assert.All(decrypted, c => Assert.Contains("TLS", c[1].Split("decrypted from TLS", 2)[1], StringComparison.Ordinal));
    }
}
