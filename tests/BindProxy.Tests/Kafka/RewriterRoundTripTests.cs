using BindProxy.Kafka.Protocol;
using BindProxy.Kafka.Rewriting;

namespace BindProxy.Tests.Kafka;

/// <summary>
/// For every version of every rewritten API: encode a response with N brokers, rewrite it, and
/// compare byte for byte with the same response encoded with the mapped addresses. Equality proves
/// the hosts/ports changed, every other byte (tagged fields included) survived, and all sizes were
/// recomputed.
/// </summary>
public sealed class RewriterRoundTripTests
{
    private static readonly TestMapper Mapper = new();

    public static TheoryData<short, short, int> Cases()
    {
        var data = new TheoryData<short, short, int>();
        void Add(short key, int from, int to)
        {
            for (var v = from; v <= to; v++)
            {
                foreach (var n in (int[])[0, 1, 3])
                {
                    data.Add(key, (short)v, n);
                }
            }
        }

        // Every API whose responses carry broker addresses, over every version the model knows.
        foreach (var (key, first) in KafkaResponseRewriter.AddressCarryingApis)
        {
            Add(key, first, KafkaApis.Of(key).MaxVersion);
        }

        return data;
    }

    internal static byte[] Encode(short apiKey, short version, IReadOnlyList<BrokerModel> brokers) => apiKey switch
    {
        KafkaApiKeys.Metadata => ResponseEncoders.Metadata(version, brokers),
        KafkaApiKeys.FindCoordinator => ResponseEncoders.FindCoordinator(version, brokers),
        KafkaApiKeys.DescribeCluster => ResponseEncoders.DescribeCluster(version, brokers),
        KafkaApiKeys.Produce => ResponseEncoders.Produce(version, brokers),
        KafkaApiKeys.Fetch => ResponseEncoders.Fetch(version, brokers),
        KafkaApiKeys.ShareFetch => ResponseEncoders.ShareFetch(brokers),
        KafkaApiKeys.ShareAcknowledge => ResponseEncoders.ShareAcknowledge(brokers),
        _ => throw new ArgumentOutOfRangeException(nameof(apiKey)),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Rewrite_matches_the_response_encoded_with_mapped_addresses(short apiKey, short version, int brokerCount)
    {
        var brokers = ResponseEncoders.Brokers(brokerCount);
        var original = Encode(apiKey, version, brokers);
        var expected = Encode(apiKey, version, ResponseEncoders.Map(brokers, Mapper));

        var (result, output) = TestSupport.Rewrite(original, apiKey, version, Mapper);
        if (brokerCount == 0)
        {
            Assert.Equal(RewriteResult.Unchanged, result);
            return;
        }

        Assert.Equal(RewriteResult.Rewritten, result);
        Assert.Equal(expected, output);

        // The same bytes cut into odd segments (fields straddling segment ends) give the same output.
        var (segmentedResult, segmentedOutput) = TestSupport.Rewrite(TestSupport.Segmented(original, Enumerable.Range(1, original.Length / 7).Select(i => i * 7 - 3)), apiKey, version, Mapper);
        Assert.Equal(RewriteResult.Rewritten, segmentedResult);
        Assert.Equal(expected, segmentedOutput);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Rewriting_is_reversible_and_sees_every_broker(short apiKey, short version, int brokerCount)
    {
        var brokers = ResponseEncoders.Brokers(brokerCount);
        var original = Encode(apiKey, version, brokers);
        var recorder = new RecordingMapper(Mapper);
        var (_, rewritten) = TestSupport.Rewrite(original, apiKey, version, recorder);

        var expectedBrokers = apiKey == KafkaApiKeys.FindCoordinator && version < 4 ? brokers.Take(1) : brokers;
        Assert.Equal(expectedBrokers.Select(b => (b.NodeId, b.Host, b.Port)), recorder.Seen);
        if (brokerCount == 0)
        {
            return;
        }

        var inverse = new TableMapper(recorder.Seen.ToDictionary(s => Mapper.Map(s.NodeId, s.Host, s.Port), s => (s.Host, s.Port)));
        var (result, restored) = TestSupport.Rewrite(rewritten, apiKey, version, inverse);
        Assert.Equal(RewriteResult.Rewritten, result);
        Assert.Equal(original, restored);
    }

    [Fact]
    public void Identity_mapping_leaves_the_frame_unchanged()
    {
        var frame = ResponseEncoders.Metadata(13, ResponseEncoders.Brokers(3));
        Assert.Equal(RewriteResult.Unchanged, TestSupport.Rewrite(frame, KafkaApiKeys.Metadata, 13, new RecordingMapper()).Result);
    }

    [Fact]
    public void Coordinator_not_available_is_left_alone()
    {
        for (short v = 0; v <= 3; v++)
        {
            var recorder = new RecordingMapper(Mapper);
            var frame = ResponseEncoders.FindCoordinator(v, []);
            Assert.Equal(RewriteResult.Unchanged, TestSupport.Rewrite(frame, KafkaApiKeys.FindCoordinator, v, recorder).Result);
            Assert.Empty(recorder.Seen);
        }
    }

    [Fact]
    public void Produce_and_fetch_without_node_endpoints_tag_are_unchanged()
    {
        Assert.Equal(RewriteResult.Unchanged, TestSupport.Rewrite(ResponseEncoders.Produce(10, null), KafkaApiKeys.Produce, 10, Mapper).Result);
        Assert.Equal(RewriteResult.Unchanged, TestSupport.Rewrite(ResponseEncoders.Fetch(17, null), KafkaApiKeys.Fetch, 17, Mapper).Result);
    }

    [Fact]
    public void Versions_before_node_endpoints_and_other_apis_are_not_parsed()
    {
        byte[] garbage = [0, 0, 0, 3, 1, 2, 3];
        for (short v = 0; v < KafkaResponseRewriter.AddressCarryingApis[KafkaApiKeys.Produce]; v++)
        {
            Assert.Equal(RewriteResult.Unchanged, TestSupport.Rewrite(garbage, KafkaApiKeys.Produce, v, Mapper).Result);
        }

        for (short v = 0; v < KafkaResponseRewriter.AddressCarryingApis[KafkaApiKeys.Fetch]; v++)
        {
            Assert.Equal(RewriteResult.Unchanged, TestSupport.Rewrite(garbage, KafkaApiKeys.Fetch, v, Mapper).Result);
        }

        Assert.Equal(RewriteResult.Unchanged, TestSupport.Rewrite(garbage, KafkaApiKeys.JoinGroup, 5, Mapper).Result);
    }

    [Theory]
    [InlineData(KafkaApiKeys.Metadata)]
    [InlineData(KafkaApiKeys.FindCoordinator)]
    [InlineData(KafkaApiKeys.DescribeCluster)]
    [InlineData(KafkaApiKeys.Produce)]
    [InlineData(KafkaApiKeys.Fetch)]
    [InlineData(KafkaApiKeys.ShareFetch)]
    [InlineData(KafkaApiKeys.ShareAcknowledge)]
    public void Versions_above_the_cap_are_reported_unsupported(short apiKey)
    {
        var version = (short)(KafkaApis.Of(apiKey).MaxVersion + 1);
        var (result, _) = TestSupport.Rewrite(new byte[64], apiKey, version, Mapper);
        Assert.Equal(RewriteResult.Malformed(MalformedReason.UnsupportedVersion), result);
    }

    [Fact]
    public void Every_truncation_of_a_rewritable_frame_is_malformed_never_an_exception()
    {
        foreach (var (key, version) in new (short, short)[] { (3, 13), (3, 4), (10, 2), (10, 6), (60, 2), (0, 10), (1, 16), (78, 0), (79, 0) })
        {
            var frame = Encode(key, version, ResponseEncoders.Brokers(2));
            for (var length = 0; length < frame.Length; length++)
            {
                var truncated = frame[..length];
                var (result, _) = TestSupport.Rewrite(truncated, key, version, Mapper);
                // Metadata copies everything after the brokers verbatim, so a cut there is not detected.
                if (key != KafkaApiKeys.Metadata || result.Status != RewriteStatus.Rewritten)
                {
                    Assert.Equal(RewriteStatus.Malformed, result.Status);
                }
            }
        }
    }

    [Fact]
    public void Tagged_field_size_that_disagrees_with_its_content_is_malformed()
    {
        var frame = ResponseEncoders.Fetch(16, ResponseEncoders.Brokers(1));
        // The top-level tag block closes the frame: count | tag 0, size, endpoints | tag 9 (6 bytes).
        // Its start is where the same response without endpoints has its last 7 bytes.
        var tagBlock = ResponseEncoders.Fetch(16, null).Length - 7;
        var endOfEndpoints = frame.Length - 6;
        Assert.Equal(0, frame[tagBlock + 1]);

        // Declare one byte more than the endpoints hold, and put a stray byte there.
        var broken = frame[..endOfEndpoints].Append((byte)0).Concat(frame[endOfEndpoints..]).ToArray();
        broken[tagBlock + 2]++;
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(broken, broken.Length - 4);
        var (result, _) = TestSupport.Rewrite(broken, KafkaApiKeys.Fetch, 16, Mapper);
        Assert.Equal(RewriteResult.Malformed(MalformedReason.TaggedFieldSizeMismatch), result);
    }
}
