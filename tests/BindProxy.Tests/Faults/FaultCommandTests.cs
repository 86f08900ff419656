using System.Net;
using BindProxy.Tests.Cli;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Faults;

/// <summary><c>bindproxy fault add|list|remove</c> against a running proxy's fault API.</summary>
public sealed class FaultCommandTests
{
    [Fact]
    public async Task Fault_add_list_and_remove_work_on_a_running_proxy()
    {
        await using var upstream = TestServer.Echo();
        await using var faults = await FaultProxy.StartAsync(upstream.Address);
        var dir = BindProxyCli.TempDir();
        var api = faults.Api.ToString();

        var (exit, output, err) = await BindProxyCli.RunAsync(dir, "fault", "add", "test", "--type", "latency", "-a", "latency=100", "-a", "jitter=5", "-m", "source=127.0.0.3", "--api", api);
        Assert.True(exit == 0, err);
        Assert.Contains("test: toxic latency_downstream added", output, StringComparison.Ordinal);

        (exit, output, err) = await BindProxyCli.RunAsync(dir, "fault", "list", "--api", api);
        Assert.True(exit == 0, err);
        Assert.Contains("latency_downstream: latency downstream toxicity 1  latency=100 jitter=5  only source=127.0.0.3", output, StringComparison.Ordinal);

        // A Kafka toxic's attributes are text, fractions and booleans too.
        (exit, _, err) = await BindProxyCli.RunAsync(dir, "fault", "add", "test", "--type", "kafka_error", "-a", "api=Produce", "-a", "error=NOT_LEADER_OR_FOLLOWER",
            "-a", "rate=0.3", "-a", "forward=false", "-a", "topic=^orders", "--api", api);
        Assert.True(exit == 0, err);
        var (_, kafkaError) = await faults.SendAsync(HttpMethod.Get, "proxies/test/toxics/kafka_error_downstream");
        var attributes = kafkaError.GetProperty("attributes");
        Assert.Equal(("Produce", "NOT_LEADER_OR_FOLLOWER", 0.3, false, "^orders"), (attributes.GetProperty("api").GetString(), attributes.GetProperty("error").GetString(),
            attributes.GetProperty("rate").GetDouble(), attributes.GetProperty("forward").GetBoolean(), attributes.GetProperty("topic").GetString()));
        (exit, _, err) = await BindProxyCli.RunAsync(dir, "fault", "add", "test", "--type", "kafka_error", "-a", "api=Produce", "-a", "error=NO_SUCH_ERROR", "--api", api);
        Assert.Equal(1, exit);
        Assert.Contains("not a Kafka error name", err, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NoContent, (await faults.SendAsync(HttpMethod.Delete, "proxies/test/toxics/kafka_error_downstream")).Status);

        (exit, _, err) = await BindProxyCli.RunAsync(dir, "fault", "add", "test", "--type", "earthquake", "--api", api);
        Assert.Equal(1, exit);
        Assert.Contains("400: invalid toxic type", err, StringComparison.Ordinal);

        (exit, output, err) = await BindProxyCli.RunAsync(dir, "fault", "remove", "test", "latency_downstream", "--api", api);
        Assert.True(exit == 0, err);
        Assert.Contains("removed", output, StringComparison.Ordinal);
        var (_, toxics) = await faults.SendAsync(HttpMethod.Get, "proxies/test/toxics");
        Assert.Equal(0, toxics.GetArrayLength());
    }
}
