using System.Net.Sockets;
using System.Text.Json;
using BindProxy.Demo;
using BindProxy.Kafka.Protocol;
using BindProxy.Tests.Admin;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Kafka;

/// <summary>
/// A large response that no rewrite needs (a Fetch v11 here) goes on to the client as its bytes
/// come, not once it is whole, and the conversation still reads it whole.
/// </summary>
public sealed class ResponseCutThroughTests
{
    private const string Route = "cut";
    private const string Client = ScriptedBroker.ScriptedPrefix + "-consumer";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_large_fetch_response_reaches_the_client_as_it_comes_and_is_recorded_whole(bool brokerFinishes)
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(1);
        var batches = RecordFrames.Batches(0, (100, 150_000, 0), (20, 60_000, 0), (7, 1000, 0));
        var response = RecordFrames.Fetch(11, 7, ("big", [(0, batches)]));
        var body = response[8..]; // after the size prefix and the correlation id (response header v0)
        int firstPart = response.Length / 2;
        var rest = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var broker = new ScriptedBroker(cluster.BrokerAddresses[0], id => id == 7 ? body : null, id => id == 7 ? (firstPart, rest.Task) : null);
        await using var admin = await AdminProxy.StartAsync(broker.Route(Route));
        using var timeout = new CancellationTokenSource(Timeout);

        using var socket = await SocketExtensions.ConnectAsync(admin.Proxy.Endpoint(Route));
        var request = new WireWriter().Int16(KafkaApiKeys.Fetch).Int16(11).Int32(7).String(false, Client).Raw(new byte[40]).ToFrame();
        await socket.SendAsync(request, SocketFlags.None, timeout.Token);

        // The first half reaches the client while the broker holds the rest back.
        var received = await socket.ReadExactlyAsync(firstPart, Timeout);
        Assert.Equal(response[..firstPart], received);
        Assert.True(response.Length > 64 * 1024, "a response the proxy cuts through");

        rest.SetResult(brokerFinishes);
        if (!brokerFinishes)
        {
            // The broker closed in the middle: the client is closed too, and told why.
            Assert.Equal(SocketError.ConnectionReset, await socket.WaitForCloseAsync(Timeout));
            await admin.Proxy.Logs.WaitForAsync(Timeout, $"(client.id {Client}) closed: the broker closed its side in the middle of a {response.Length}-byte response ({firstPart} bytes sent)");
            return;
        }

        Assert.Equal(response[firstPart..], await socket.ReadExactlyAsync(response.Length - firstPart, Timeout));
        var records = await admin.WaitForJsonAsync($"api/kafka/requests?client={Client}", json => json.GetArrayLength() == 1 && json[0].GetProperty("state").GetString() == "answered");
        var fetch = records[0];
        Assert.Equal(response.Length, fetch.GetProperty("responseBytes").GetInt32());
        Assert.Equal(127, fetch.GetProperty("response").GetProperty("records").GetInt64());
        Assert.Equal(batches.Length, fetch.GetProperty("response").GetProperty("recordBytes").GetInt64());
        Assert.Equal("big", fetch.GetProperty("response").GetProperty("topics")[0].GetProperty("name").GetString());
    }
}
