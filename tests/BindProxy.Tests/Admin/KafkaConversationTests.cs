using System.Text.Json;
using BindProxy.Configuration;
using BindProxy.Demo;
using BindProxy.Kafka;
using BindProxy.Tests.Infrastructure;
using BindProxy.Tests.Kafka;
using Confluent.Kafka;

namespace BindProxy.Tests.Admin;

/// <summary>The conversation of a Kafka route through <c>/api/kafka/requests</c>, with real clients against the mock cluster.</summary>
public sealed class KafkaConversationTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    internal static RouteConfig Route(MockCluster cluster, string name, string? decodeBodies = null) => new()
    {
        Name = name,
        Listen = "127.0.0.1:0",
        Upstream = cluster.BrokerAddresses[0],
        Source = "127.0.0.2",
        Protocol = "Kafka",
        DecodeBodies = decodeBodies,
    };

    [Fact]
    public async Task A_route_that_decodes_always_records_topics_partitions_and_record_counts_that_outlive_the_client()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(1);
        cluster.CreateTopic("orders", partitions: 2, replicationFactor: 1);
        await using var admin = await AdminProxy.StartAsync(Route(cluster, KafkaRoute.Name, "always"));
        using var timeout = new CancellationTokenSource(Timeout);

        using (var producer = Producer(admin, KafkaRoute.Name, "conv-producer"))
        {
            for (int i = 0; i < 5; i++)
            {
                await producer.ProduceAsync(new TopicPartition("orders", 1), new Message<string, string> { Key = "k", Value = $"v{i}" }, timeout.Token);
            }
        }

        // The producer is gone; its records are still there.
        var produces = await admin.WaitForJsonAsync("api/kafka/requests?client=conv-producer&api=Produce", json => json.GetArrayLength() >= 1);
        long records = 0;
        foreach (var produce in produces.EnumerateArray())
        {
            Assert.Equal("conv-producer", produce.GetProperty("clientId").GetString());
            Assert.StartsWith("127.0.0.2:", produce.GetProperty("source").GetString(), StringComparison.Ordinal);
            Assert.Equal("answered", produce.GetProperty("state").GetString());
            Assert.True(produce.GetProperty("latencyMs").GetDouble() > 0);
            var topic = Assert.Single(produce.GetProperty("request").GetProperty("topics").EnumerateArray());
            Assert.Equal("orders", topic.GetProperty("name").GetString());
            var partition = Assert.Single(topic.GetProperty("partitions").EnumerateArray());
            Assert.Equal(1, partition.GetProperty("index").GetInt32());
            records += partition.GetProperty("records").GetInt64();
            Assert.All(produce.GetProperty("response").GetProperty("errors").EnumerateArray(), e => Assert.Equal("NONE", e.GetProperty("name").GetString()));
            Assert.Equal(JsonValueKind.Null, produce.GetProperty("error").ValueKind);
        }

        Assert.Equal(5, records);

        // Filters: by API and topic (a Metadata request names the topic too), and by source address.
        var byTopic = await admin.GetJsonAsync("api/kafka/requests?topic=orders");
        Assert.Contains(byTopic.EnumerateArray(), r => r.GetProperty("api").GetString() == "Produce");
        Assert.All(byTopic.EnumerateArray(), r => Assert.Contains("orders", r.GetRawText(), StringComparison.Ordinal));
        Assert.NotEmpty((await admin.GetJsonAsync("api/kafka/requests?source=127.0.0.2")).EnumerateArray());
        Assert.Empty((await admin.GetJsonAsync("api/kafka/requests?source=127.0.0.9")).EnumerateArray());

        // A consumer reads them back: its Fetch responses carry the five records.
        var read = KafkaRoute.ReadAll(admin.Proxy, "orders", 2, Timeout);
        Assert.Equal(5, read.Count);
        var fetches = await admin.GetJsonAsync("api/kafka/requests?client=reader&api=Fetch");
        long fetched = fetches.EnumerateArray().Where(f => f.GetProperty("response").ValueKind == JsonValueKind.Object)
            .Sum(f => f.GetProperty("response").GetProperty("records").GetInt64());
        Assert.Equal(5, fetched);
    }

    [Fact]
    public async Task Produce_requests_streamed_through_and_large_fetch_responses_carry_the_record_counts_that_were_produced()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(1);
        cluster.CreateTopic("large", partitions: 1, replicationFactor: 1);
        await using var admin = await AdminProxy.StartAsync(Route(cluster, KafkaRoute.Name, "always"));

        // Messages over the 64 KiB above which requests are streamed, and many small ones batched
        // together past it (batch.size 1 MB, a long linger).
        const int Large = 12;
        const int Small = 400;
        using (var producer = Producer(admin, KafkaRoute.Name, "large-producer", c =>
        {
            c.BatchSize = 1_000_000;
            c.LingerMs = 200;
            c.MessageMaxBytes = 2_000_000;
            c.CompressionType = CompressionType.None;
        }))
        {
            var failures = 0;
            for (int i = 0; i < Large; i++)
            {
                producer.Produce("large", new Message<string, string> { Key = $"l{i}", Value = new string((char)('a' + i), 100 * 1024) }, r => Interlocked.Add(ref failures, r.Error.IsError ? 1 : 0));
            }

            for (int i = 0; i < Small; i++)
            {
                producer.Produce("large", new Message<string, string> { Key = $"s{i}", Value = new string('s', 1024) }, r => Interlocked.Add(ref failures, r.Error.IsError ? 1 : 0));
            }

            Assert.Equal(0, producer.Flush(Timeout));
            Assert.Equal(0, failures);
        }

        var produces = await admin.WaitForJsonAsync("api/kafka/requests?client=large-producer&api=Produce&limit=512",
            json => json.EnumerateArray().All(r => r.GetProperty("state").GetString() == "answered" && r.GetProperty("request").ValueKind == JsonValueKind.Object));
        Assert.Contains(produces.EnumerateArray(), r => r.GetProperty("requestBytes").GetInt32() > KafkaSession.StreamRequestsAbove);
        Assert.All(produces.EnumerateArray(), r => Assert.Equal(JsonValueKind.Null, r.GetProperty("request").GetProperty("undecoded").ValueKind));
        Assert.Equal(Large + Small, produces.EnumerateArray().Sum(r => r.GetProperty("request").GetProperty("records").GetInt64()));
        foreach (var produce in produces.EnumerateArray())
        {
            // The batches' bytes fit in the request they came in.
            long recordBytes = produce.GetProperty("request").GetProperty("recordBytes").GetInt64();
            Assert.InRange(recordBytes, 1, produce.GetProperty("requestBytes").GetInt32());
        }

        var read = KafkaRoute.ReadAll(admin.Proxy, "large", 1, Timeout);
        Assert.Equal(Large + Small, read.Count);
        var fetches = await admin.GetJsonAsync("api/kafka/requests?client=reader&api=Fetch&limit=512");
        var answered = fetches.EnumerateArray().Where(f => f.GetProperty("response").ValueKind == JsonValueKind.Object).ToList();
        Assert.Contains(answered, f => f.GetProperty("responseBytes").GetInt32() > KafkaSession.StreamRequestsAbove);
        Assert.Equal(Large + Small, answered.Sum(f => f.GetProperty("response").GetProperty("records").GetInt64()));
    }

    [Fact]
    public async Task Errors_are_named_and_filtered_and_an_unwatched_client_is_recorded_from_headers_only()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        using var cluster = MockCluster.Create(1);
        cluster.CreateTopic("known", partitions: 1, replicationFactor: 1);
        await using var admin = await AdminProxy.StartAsync(Route(cluster, "conv-watch"));
        using var timeout = new CancellationTokenSource(Timeout);

        using var producer = Producer(admin, "conv-watch", "unwatched");
        await producer.ProduceAsync("known", new Message<string, string> { Key = "k", Value = "v" }, timeout.Token);
        var unwatched = await admin.GetJsonAsync("api/kafka/requests?client=unwatched");
        Assert.NotEmpty(unwatched.EnumerateArray());
        Assert.All(unwatched.EnumerateArray(), r =>
        {
            Assert.Equal(JsonValueKind.Null, r.GetProperty("request").ValueKind);
            Assert.True(r.GetProperty("requestBytes").GetInt32() > 0);
        });

        // Someone follows the client: from then on its bodies are decoded, and an error is named.
        using var follow = await admin.Http.GetAsync("api/kafka/requests?follow=true&client=watched&limit=0", HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        Assert.Equal("application/x-ndjson", follow.Content.Headers.ContentType?.MediaType);
        using var watchedProducer = Producer(admin, "conv-watch", "watched", c => c.AllowAutoCreateTopics = false);
        var missing = watchedProducer.ProduceAsync("missing-topic", new Message<string, string> { Key = "k", Value = "v" }, timeout.Token);

        using var stream = await follow.Content.ReadAsStreamAsync(timeout.Token);
        using var lines = new StreamReader(stream);
        JsonElement? errorLine = null;
        while (errorLine is null && await lines.ReadLineAsync(timeout.Token) is { } line)
        {
            var json = JsonDocument.Parse(line).RootElement.Clone();
            Assert.Equal("watched", json.GetProperty("clientId").GetString());
            // (An ApiVersions request newer than the broker knows is answered UNSUPPORTED_VERSION first: an error too, but not this one.)
            if (json.GetProperty("error").ValueKind == JsonValueKind.String && json.GetProperty("api").GetString() == "Metadata")
            {
                errorLine = json;
            }
        }

        Assert.NotNull(errorLine);
        Assert.Equal("Metadata", errorLine.Value.GetProperty("api").GetString());
        Assert.Equal("UNKNOWN_TOPIC_OR_PARTITION", errorLine.Value.GetProperty("error").GetString());
        var error = Assert.Single(errorLine.Value.GetProperty("response").GetProperty("errors").EnumerateArray(), e => e.GetProperty("code").GetInt16() != 0);
        Assert.Equal("missing-topic", error.GetProperty("topic").GetString());

        var errorsOnly = await admin.GetJsonAsync("api/kafka/requests?errors=true");
        Assert.NotEmpty(errorsOnly.EnumerateArray());
        Assert.All(errorsOnly.EnumerateArray(), r => Assert.Equal(JsonValueKind.String, r.GetProperty("error").ValueKind));

        // Errors by name in the metrics; the unwatched client's responses are counted as undecoded.
        var samples = PrometheusText.Samples(await admin.GetTextAsync("metrics")).Where(s => s.Name == "bindproxy_kafka_requests_total").ToList();
        Assert.Contains(samples, s => s.Labels["api"] == "Metadata" && s.Labels["error"] == "UNKNOWN_TOPIC_OR_PARTITION");
        Assert.Contains(samples, s => s.Labels["api"] == "Produce" && s.Labels["error"] == "undecoded");
        Assert.Contains(PrometheusText.Samples(await admin.GetTextAsync("metrics")), s => s.Name == "bindproxy_kafka_request_duration_seconds_count" && s.Labels["api"] == "Produce");
        Assert.False(missing.IsCompleted && missing.IsCompletedSuccessfully);
    }

    internal static IProducer<string, string> Producer(AdminProxy admin, string route, string clientId, Action<ProducerConfig>? configure = null)
    {
        var config = new ProducerConfig
        {
            BootstrapServers = admin.Proxy.Endpoint(route).ToString(),
            ClientId = clientId,
            EnableIdempotence = true,
            Acks = Acks.All,
            LingerMs = 5,
            MessageTimeoutMs = 20_000,
        };
        configure?.Invoke(config);
        return new ProducerBuilder<string, string>(config).SetLogHandler((_, _) => { }).Build();
    }
}
