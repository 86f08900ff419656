using System.Buffers;
using System.Net.Sockets;
using BindProxy.Configuration;
using BindProxy.Demo;
using BindProxy.Kafka.Protocol;
using BindProxy.Kafka.Protocol.Messages;
using BindProxy.Tests.Infrastructure;
using BindProxy.Tests.Kafka;

namespace BindProxy.Tests.Faults;

/// <summary>
/// A Kafka toxic added while a large response is being cut through (passed on as its bytes come,
/// before it is whole): that response reaches the client unchanged, and the next one, asked for
/// after the toxic, gets the toxic, in order behind it.
/// </summary>
public sealed class CutThroughToxicTests
{
    private const string Client = ScriptedBroker.ScriptedPrefix + "-consumer";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_toxic_added_during_a_cut_through_response_leaves_it_whole_and_hits_the_next()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(1);
        var large = RecordFrames.Fetch(11, 7, ("big", [(0, RecordFrames.Batches(0, (100, 150_000, 0), (7, 1000, 0)))]));
        var small = RecordFrames.Fetch(11, 8, ("big", [(0, RecordFrames.Batches(107, (3, 1000, 0)))]));
        int firstPart = large.Length / 2;
        var rest = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var broker = new ScriptedBroker(
            cluster.BrokerAddresses[0],
            id => id switch { 7 => large[8..], 8 => small[8..], _ => null }, // after the size prefix and the correlation id
            id => id == 7 ? (firstPart, rest.Task) : null);
        await using var faults = await FaultProxy.StartAsync(new ProxyConfig
        {
            Routes = [new RouteConfig { Name = "test", Listen = "127.0.0.1:0", Upstream = broker.Endpoint.ToString(), Source = "127.0.0.2", Protocol = "Kafka" }],
            Faults = new FaultsConfig { Listen = "127.0.0.1:0" },
        });
        using var timeout = new CancellationTokenSource(Timeout);
        using var socket = await SocketExtensions.ConnectAsync(faults.Proxy.Endpoint("test"));
        await socket.SendAsync(FetchRequest(7), SocketFlags.None, timeout.Token);

        // Half of the large response is through before there is any toxic.
        Assert.True(large.Length > 64 * 1024, "a response the proxy cuts through");
        Assert.Equal(large[..firstPart], await socket.ReadExactlyAsync(firstPart, Timeout));

        await faults.AddToxicAsync("""{"name":"fetch_fails","type":"kafka_error","attributes":{"api":"Fetch","error":"NOT_LEADER_OR_FOLLOWER","forward":true}}""");
        await socket.SendAsync(FetchRequest(8), SocketFlags.None, timeout.Token);
        rest.SetResult(true); // the broker reads the second Fetch once it has sent the first response whole

        // The rest of the first, byte for byte as the broker sent it; then the second, with the error.
        Assert.Equal(large[firstPart..], await socket.ReadExactlyAsync(large.Length - firstPart, Timeout));
        var prefix = await socket.ReadExactlyAsync(4, Timeout);
        int size = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(prefix);
        var second = await socket.ReadExactlyAsync(size, Timeout);
        Assert.Equal(8, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(second));
        var fetch = new FetchResponseData();
        var reader = new KafkaReader(new ReadOnlySequence<byte>(second.AsMemory(4)));
        Assert.True(fetch.TryRead(ref reader, 11), $"the second response does not read: {reader.Error}");
        var partition = Assert.Single(Assert.Single(fetch.Responses).Partitions);
        Assert.Equal(6, partition.ErrorCode); // NOT_LEADER_OR_FOLLOWER
        Assert.NotEqual(small[8..], second[4..]);
        Assert.Equal(2, broker.Received.Count); // forward: true, so the broker saw both
    }

    private static byte[] FetchRequest(int correlationId) =>
        new WireWriter().Int16(KafkaApiKeys.Fetch).Int16(11).Int32(correlationId).String(false, Client).Raw(new byte[40]).ToFrame();
}
