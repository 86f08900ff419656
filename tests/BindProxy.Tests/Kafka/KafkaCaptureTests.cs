using System.Buffers.Binary;
using BindProxy.Demo;
using BindProxy.Kafka.Protocol;
using BindProxy.Tests.Infrastructure;
using Confluent.Kafka;

namespace BindProxy.Tests.Kafka;

/// <summary>What the issue promises a Wireshark user: on the broker ports, this client is 127.0.0.2 and nothing else.</summary>
public sealed class KafkaCaptureTests
{
    [Fact]
    public async Task Every_packet_to_or_from_a_broker_port_has_the_source_address_on_the_other_end()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(3);
        cluster.CreateTopicLedByEachBroker("captured", 3, 1);

        cluster.SetGroupInitialRebalanceDelay(0);
        await using var proxy = await KafkaRoute.StartProxyAsync(cluster);
        var brokerPorts = KafkaRoute.BrokerPorts(cluster);
        var filter = string.Join(" or ", brokerPorts.Select(p => $"tcp port {p}"));

        // The probe asks the proxy for metadata, which it fetches from a broker from the source:
        // traffic in the filter, over by the time the answer is read.
        await using var capture = await PacketCapture.StartAsync(filter, async () =>
        {
            using var probe = await SocketExtensions.ConnectAsync(proxy.Endpoint(KafkaRoute.Name));
            await probe.SendAsync(TestSupport.RequestFrame(KafkaApiKeys.Metadata, 1, ResponseEncoders.CorrelationId, "capture-probe", w => w.Int32(-1)));
            var size = BinaryPrimitives.ReadInt32BigEndian(await probe.ReadExactlyAsync(4));
            await probe.ReadExactlyAsync(size);
        });

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using (var producer = KafkaRoute.Producer(proxy, "captured-producer"))
        {
            for (int i = 0; i < 30; i++)
            {
                await producer.ProduceAsync(new TopicPartition("captured", i % 3), new Message<string, string> { Key = $"k{i}", Value = $"v{i}" }, timeout.Token);
            }
        }

        using (var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = proxy.Endpoint(KafkaRoute.Name).ToString(),
            ClientId = "captured-consumer",
            GroupId = "captured-group",
            AutoOffsetReset = AutoOffsetReset.Earliest,
        }).SetLogHandler((_, _) => { }).Build())
        {
            consumer.Subscribe("captured");
            int read = 0;
            while (read < 30 && !timeout.IsCancellationRequested)
            {
                if (consumer.Consume(TimeSpan.FromMilliseconds(200))?.Message is not null)
                {
                    read++;
                }
            }

            Assert.Equal(30, read);
            consumer.Close();
        }

        await capture.StopAsync();
        var packets = await capture.ReadAsync(null, "ip.src", "tcp.srcport", "ip.dst", "tcp.dstport");
        var ports = brokerPorts.Select(p => p.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToHashSet();
        var offenders = new List<string>();
        var brokersSeen = new HashSet<string>();
        foreach (var p in packets)
        {
            Assert.True(p.Length == 4, $"a packet without IPv4/TCP fields: [{string.Join(", ", p)}]");
            var (src, sport, dst, dport) = (p[0], p[1], p[2], p[3]);
            // The end that is not the broker port is the client side of the connection.
            var (other, brokerAddress, broker) = ports.Contains(sport) ? (dst, src, sport) : (src, dst, dport);
            brokersSeen.Add(broker);
            if (other != KafkaRoute.Source || brokerAddress != "127.0.0.1")
            {
                offenders.Add(string.Join(" ", p));
            }
        }

        Assert.True(packets.Count > 100, $"only {packets.Count} packets captured");
        Assert.Empty(offenders);
        Assert.Equal(ports, brokersSeen);
    }
}
