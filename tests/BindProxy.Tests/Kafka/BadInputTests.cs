using System.Net;
using System.Net.Sockets;
using BindProxy.Demo;
using BindProxy.Kafka.Brokers;
using BindProxy.Tests.Infrastructure;
using Confluent.Kafka;
using Microsoft.Extensions.DependencyInjection;

namespace BindProxy.Tests.Kafka;

/// <summary>
/// A mock cluster behind the proxy with a well-behaved idempotent producer running the whole
/// time; each test throws one kind of bad input at the bootstrap or a broker listener.
/// </summary>
public sealed class BadInputFixture : IAsyncLifetime
{
    private readonly CancellationTokenSource _stop = new();

    /// <summary>The producer's messages not yet acknowledged, at most 4 (disposed after the producer, whose reports release it).</summary>
    private readonly SemaphoreSlim _inFlight = new(4);
    private MockCluster? _cluster;
    private IProducer<string, string>? _producer;
    private Task _producing = Task.CompletedTask;
    private int _acknowledged;
    private int _failed;
    private string? _lastFailure;

    public TestProxy Proxy { get; private set; } = null!;

    public IPEndPoint Bootstrap { get; private set; } = null!;

    /// <summary>The proxy's listener for broker 2.</summary>
    public IPEndPoint BrokerListener { get; private set; } = null!;

    public int Acknowledged => Volatile.Read(ref _acknowledged);

    public int Failed => Volatile.Read(ref _failed);

    public string? LastFailure => _lastFailure;

    public async ValueTask InitializeAsync()
    {
        if (MockCluster.EnsureNativeLibrary() is not null)
        {
            return; // each test skips with the reason
        }

        _cluster = MockCluster.Create(3);
        _cluster.CreateTopicLedByEachBroker("steady", 3, 3);

        Proxy = await KafkaRoute.StartProxyAsync(_cluster);
        Bootstrap = Proxy.Endpoint(KafkaRoute.Name);
        _producer = KafkaRoute.Producer(Proxy, "steady-producer");
        var producer = _producer;
        _producing = Task.Run(async () =>
        {
            // A steady stream through every test, paced by the cluster: a few messages in flight,
            // the next produced as one is acknowledged.
            var inFlight = _inFlight;
            try
            {
                for (int i = 0; i < 1_000_000; i++)
                {
                    await inFlight.WaitAsync(_stop.Token);
                    producer.Produce(new TopicPartition("steady", i % 3), new Message<string, string> { Key = $"k{i}", Value = $"v{i}" }, report =>
                    {
                        if (report.Error.IsError)
                        {
                            _lastFailure = report.Error.Reason;
                            Interlocked.Increment(ref _failed);
                        }
                        else
                        {
                            Interlocked.Increment(ref _acknowledged);
                        }

                        inFlight.Release();
                    });
                }
            }
            catch (OperationCanceledException)
            {
            }
        });

        // The producer's metadata makes the proxy open a listener per broker.
        var directories = Proxy.Services.GetRequiredService<BrokerDirectories>();
        await Poll.UntilAsync(() => directories.All.TryGetValue(KafkaRoute.Name, out var directory) && directory.Brokers.Count == 3,
            "a listener for each of the 3 brokers", TimeSpan.FromSeconds(30));

        var broker2 = directories.All[KafkaRoute.Name].Brokers.Single(b => b.NodeId == 2);
        BrokerListener = new IPEndPoint(Bootstrap.Address, broker2.ProxyPort);
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await _producing.WaitAsync(TimeSpan.FromSeconds(10));
        if (_producer is not null)
        {
            _producer.Flush(TimeSpan.FromSeconds(10));
            _producer.Dispose();
        }

        if (Proxy is not null)
        {
            await Proxy.DisposeAsync();
        }

        _cluster?.Dispose();
        _stop.Dispose();
        _inFlight.Dispose();
    }
}

public sealed class BadInputTests(BadInputFixture fixture) : IClassFixture<BadInputFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    /// <summary>The first bytes of a real TLS 1.2/1.3 ClientHello record.</summary>
    private static readonly byte[] TlsClientHello = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03, 0x5A, 0x1B];

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var listener in new[] { "bootstrap", "broker" })
        {
            foreach (var input in new[] { "garbage", "truncated", "oversized", "negative-size", "tls" })
            {
                data.Add(listener, input);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Bad_input_closes_only_that_connection_with_a_log_line_naming_the_client_and_the_reason(string listener, string input)
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        var endpoint = listener == "bootstrap" ? fixture.Bootstrap : fixture.BrokerListener;
        var route = listener == "bootstrap" ? KafkaRoute.Name : $"{KafkaRoute.Name}/broker-2";
        int acknowledgedBefore = fixture.Acknowledged;

        using var socket = await SocketExtensions.ConnectAsync(endpoint);
        var client = (IPEndPoint)socket.LocalEndPoint!;
        string reason;
        switch (input)
        {
            case "garbage":
                // A sane size, then fewer bytes than the fixed part of any request header.
                await socket.SendAsync(new byte[] { 0, 0, 0, 6, 0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x01 }).WaitAsync(Timeout);
                reason = "a request header that cannot be parsed (FrameTooShort)";
                break;
            case "truncated":
                // The first 24 bytes of a 104-byte Metadata v4 request, then FIN.
                await socket.SendAsync(new byte[] { 0, 0, 0, 100, 0, 3, 0, 4, 0, 0, 0, 7, 0, 4, (byte)'k', (byte)'c', (byte)'a', (byte)'t', 0, 0, 0, 1, 0, 5 }).WaitAsync(Timeout);
                socket.Shutdown(SocketShutdown.Send);
                reason = "the client closed its side in the middle of a 104-byte request (24 bytes sent)";
                break;
            case "oversized":
                // 256 MiB announced; nothing of the body is sent or waited for.
                await socket.SendAsync(new byte[] { 0x10, 0, 0, 0, 0, 18, 0, 3 }).WaitAsync(Timeout);
                reason = "a frame of 268435456 bytes, over MaxFrameSize 104857600";
                break;
            case "negative-size":
                await socket.SendAsync(new byte[] { 0xFF, 0xFF, 0xFF, 0xFE, 0, 18 }).WaitAsync(Timeout);
                reason = "a negative frame size (-2)";
                break;
            case "tls":
                await socket.SendAsync(TlsClientHello).WaitAsync(Timeout);
                reason = "the client sent a TLS ClientHello, but the route listens in plaintext; set the client to plaintext (security.protocol=PLAINTEXT), or give the route ListenTls";
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(input), input, null);
        }

        // The proxy closes this connection (reset: it is abandoned mid-protocol; TLS to a
        // plaintext listener is a setting to change, not an attack, and is closed cleanly) ...
        var closed = await socket.WaitForCloseAsync(Timeout);
        Assert.Equal(input == "tls" ? SocketError.Success : SocketError.ConnectionReset, closed);

        // ... and says who and why, on the route the connection came in on.
        var line = input == "tls"
            ? await fixture.Proxy.Logs.WaitForAsync(Timeout, $"{route}: {client} closed: ", reason)
            : await fixture.Proxy.Logs.WaitForAsync(Timeout, $"{route}: {client} (client.id -) closed: ", reason);
        Assert.DoesNotContain("Exception", line);

        // The producer on the same proxy never noticed.
        await Poll.UntilAsync(() => fixture.Acknowledged, acknowledged => acknowledged >= acknowledgedBefore + 20,
            $"the good producer to get 20 more acknowledgements (it had {acknowledgedBefore})", Timeout);
        Assert.True(fixture.Failed == 0, $"the good producer saw {fixture.Failed} failures, last: {fixture.LastFailure}");
    }
}
