using System.Buffers;
using System.Buffers.Binary;
using BindProxy.Kafka.Protocol;
using BindProxy.Kafka.Rewriting;

namespace BindProxy.Tests.Kafka;

/// <summary>
/// The codec against bytes a real peer produced: frames captured at test time between Confluent.Kafka
/// 2.16 and librdkafka 2.16's mock cluster (see <see cref="GoldenCapture"/>).
/// </summary>
public sealed class GoldenBytesTests(GoldenCapture capture) : IClassFixture<GoldenCapture>
{
    private static readonly TestMapper Mapper = new();

    private IReadOnlyList<CapturedExchange> Exchanges()
    {
        if (capture.SkipReason is not null)
        {
            BindProxy.Tests.Infrastructure.ExternalTool.Unavailable(capture.SkipReason);
        }

        var output = TestContext.Current.TestOutputHelper;
        foreach (var group in capture.Exchanges.GroupBy(e => (e.ApiKey, e.ApiVersion)).OrderBy(g => g.Key))
        {
            output?.WriteLine($"api {group.Key.ApiKey} v{group.Key.ApiVersion}: {group.Count()} responses");
        }

        foreach (var note in capture.Notes)
        {
            output?.WriteLine(note);
        }

        return capture.Exchanges;
    }

    [Theory]
    [InlineData(KafkaApiKeys.Metadata, 13)]
    [InlineData(KafkaApiKeys.Produce, 10)]
    [InlineData(KafkaApiKeys.Fetch, 16)]
    [InlineData(KafkaApiKeys.FindCoordinator, 2)]
    [InlineData(KafkaApiKeys.ApiVersions, 0)]
    [InlineData(KafkaApiKeys.ApiVersions, 3)]
    public void The_capture_holds_the_versions_clients_use(short apiKey, short apiVersion) =>
        Assert.Contains(Exchanges(), e => e.ApiKey == apiKey && e.ApiVersion == apiVersion);

    [Fact]
    public void Captured_requests_parse_and_track()
    {
        var tracker = new CorrelationTracker(1024);
        foreach (var exchange in Exchanges())
        {
            var status = tracker.TrackRequest(TestSupport.ByteByByte(exchange.Request), out var header);
            Assert.Equal(TrackStatus.Tracked, status);
            Assert.Equal((exchange.ApiKey, exchange.ApiVersion, exchange.CorrelationId), (header.ApiKey, header.ApiVersion, header.CorrelationId));
            Assert.Equal("rdkafka", header.ClientId);
            Assert.True(KafkaResponseHeader.TryReadCorrelationId(new ReadOnlySequence<byte>(exchange.Response), out var correlationId));
            Assert.True(tracker.TryTake(correlationId, out var request));
            Assert.Equal(new InFlightRequest(exchange.ApiKey, exchange.ApiVersion), request);
        }
    }

    [Fact]
    public void Broker_addresses_are_rewritten_and_everything_else_is_kept()
    {
        var rewrittenPerApi = new Dictionary<short, int>();
        foreach (var exchange in Exchanges().Where(e => e.ApiKey != KafkaApiKeys.ApiVersions && KafkaResponseRewriter.Rewrites(e.ApiKey, e.ApiVersion)))
        {
            // Parse + rewrite: the recorder sees the real brokers.
            var seen = new RecordingMapper(Mapper);
            var (result, rewritten) = TestSupport.Rewrite(TestSupport.ByteByByte(exchange.Response), exchange.ApiKey, exchange.ApiVersion, seen);
            Assert.NotEqual(RewriteStatus.Malformed, result.Status);
            Assert.All(seen.Seen, b => Assert.Equal("127.0.0.1", b.Host));
            if (result.Status == RewriteStatus.Unchanged)
            {
                Assert.DoesNotContain(seen.Seen, b => b.NodeId >= 0);
                continue;
            }

            rewrittenPerApi[exchange.ApiKey] = rewrittenPerApi.GetValueOrDefault(exchange.ApiKey) + 1;
            Assert.Equal(rewritten.Length - 4, BinaryPrimitives.ReadInt32BigEndian(rewritten));

            // Re-parse: the same brokers, now at the mapped addresses.
            var reparsed = new RecordingMapper();
            Assert.Equal(RewriteStatus.Unchanged, TestSupport.Rewrite(rewritten, exchange.ApiKey, exchange.ApiVersion, reparsed).Result.Status);
            Assert.Equal(seen.Seen.Select(b => (b.NodeId, Mapper.Map(b.NodeId, b.Host, b.Port))), reparsed.Seen.Select(b => (b.NodeId, (b.Host, b.Port))));

            // Everything else identical: mapping back restores the captured bytes exactly.
            var inverse = new TableMapper(seen.Seen.ToDictionary(b => Mapper.Map(b.NodeId, b.Host, b.Port), b => (b.Host, b.Port)));
            var (_, restored) = TestSupport.Rewrite(rewritten, exchange.ApiKey, exchange.ApiVersion, inverse);
            Assert.Equal(exchange.Response, restored);
        }

        Assert.True(rewrittenPerApi.GetValueOrDefault(KafkaApiKeys.Metadata) > 0, "no Metadata response rewritten");
        Assert.True(rewrittenPerApi.GetValueOrDefault(KafkaApiKeys.FindCoordinator) > 0, "no FindCoordinator response rewritten");
        Assert.True(rewrittenPerApi.GetValueOrDefault(KafkaApiKeys.Produce) > 0, "no Produce response carried NodeEndpoints");
        Assert.True(rewrittenPerApi.GetValueOrDefault(KafkaApiKeys.Fetch) > 0, "no Fetch response carried NodeEndpoints");
    }

    [Fact]
    public void ApiVersions_replies_are_capped_and_the_error_reply_passes()
    {
        foreach (var exchange in Exchanges().Where(e => e.ApiKey == KafkaApiKeys.ApiVersions))
        {
            var output = new ArrayBufferWriter<byte>();
            var result = ApiVersionsCap.TryCap(new ReadOnlySequence<byte>(exchange.Response), exchange.ApiVersion, output);
            var errorCode = BinaryPrimitives.ReadInt16BigEndian(exchange.Response.AsSpan(8));
            if (errorCode == KafkaErrors.UnsupportedVersion)
            {
                // librdkafka's mock answers a too-new ApiVersions with neither the v0 nor the
                // requested layout; it is passed through, and the client's retry gets capped.
                Assert.Equal(RewriteStatus.Unchanged, result.Status);
                continue;
            }

            Assert.Equal(0, errorCode);
            Assert.NotEqual(RewriteStatus.Malformed, result.Status);
            var capped = result.Status == RewriteStatus.Rewritten ? output.WrittenSpan.ToArray() : exchange.Response;
            Assert.Equal(exchange.Response.Length, capped.Length);

            // Capping is idempotent: a second pass finds nothing left to cap.
            var again = ApiVersionsCap.TryCap(new ReadOnlySequence<byte>(capped), exchange.ApiVersion, new ArrayBufferWriter<byte>());
            Assert.Equal(RewriteStatus.Unchanged, again.Status);
        }
    }
}
