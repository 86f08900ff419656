using System.Buffers;
using System.Buffers.Binary;
using BindProxy.Kafka.Protocol;
using BindProxy.Kafka.Rewriting;

namespace BindProxy.Tests.Kafka;

public sealed class ApiVersionsCapTests
{
    private static readonly (short Key, short Min, short Max)[] BrokerApis =
    [
        (KafkaApiKeys.Produce, 3, 12),
        (KafkaApiKeys.Fetch, 4, 18),
        (KafkaApiKeys.Metadata, 0, 14),
        (KafkaApiKeys.FindCoordinator, 0, 6),
        (KafkaApiKeys.JoinGroup, 0, 9),
        (KafkaApiKeys.ApiVersions, 0, 4),
        (KafkaApiKeys.DescribeCluster, 0, 2),
        (KafkaApiKeys.ShareFetch, 1, 1),
        (KafkaApiKeys.ShareAcknowledge, 0, 0),
        (999, 0, 50),
    ];

    /// <summary>Encodes an ApiVersions response body in the layout of <paramref name="layout"/>.</summary>
    private static byte[] Encode(short layout, short errorCode, IEnumerable<(short Key, short Min, short Max)> apis)
    {
        var flexible = layout >= 3;
        var entries = apis.ToList();
        var w = new WireWriter().Int32(ResponseEncoders.CorrelationId).Int16(errorCode).ArrayCount(flexible, entries.Count);
        foreach (var (key, min, max) in entries)
        {
            w.Int16(key).Int16(min).Int16(max);
            if (flexible)
            {
                w.Tags(key == KafkaApiKeys.Fetch ? [new TaggedField(4, [1])] : null);
            }
        }

        if (layout >= 1)
        {
            w.Int32(0);
        }

        if (flexible)
        {
            // SupportedFeatures (tag 0) and FinalizedFeaturesEpoch (tag 1), opaque here.
            w.Tags([new TaggedField(0, new WireWriter().ArrayCount(true, 1).String(true, "metadata.version").Int16(1).Int16(27).Tags(null).ToArray()), new TaggedField(1, new WireWriter().Int64(42).ToArray())]);
        }

        return w.ToFrame();
    }

    /// <summary>What the cap should leave: keys the model does not know taken out, every max lowered to the model's newest.</summary>
    private static IEnumerable<(short Key, short Min, short Max)> Capped(IEnumerable<(short Key, short Min, short Max)> apis) =>
        apis.Where(a => KafkaApis.Of(a.Key).IsKnown).Select(a =>
        {
            var cap = KafkaApis.Of(a.Key).MaxVersion;
            return a.Max > cap && a.Min <= cap ? (a.Key, a.Min, cap) : a;
        });

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Max_versions_are_capped_and_min_versions_kept(short version)
    {
        var frame = Encode(version, 0, BrokerApis);
        var output = new ArrayBufferWriter<byte>();
        var result = ApiVersionsCap.TryCap(TestSupport.ByteByByte(frame), version, output);

        Assert.Equal(RewriteStatus.Rewritten, result.Status);
        Assert.Equal(Encode(version, 0, Capped(BrokerApis)), output.WrittenSpan.ToArray());
        var conflict = Assert.Single(result.Conflicts);
        Assert.Equal(new ApiVersionConflict(KafkaApiKeys.ShareFetch, 1, 1, 0), conflict);
    }

    [Fact]
    public void The_single_entry_point_caps_api_versions_too()
    {
        var frame = Encode(3, 0, BrokerApis);
        var (result, output) = TestSupport.Rewrite(frame, KafkaApiKeys.ApiVersions, 3, new TestMapper());
        Assert.Equal(RewriteStatus.Rewritten, result.Status);
        Assert.Equal(Encode(3, 0, Capped(BrokerApis)), output);
    }

    [Fact]
    public void Versions_within_the_caps_are_unchanged()
    {
        var frame = Encode(3, 0, Capped(BrokerApis));
        var result = ApiVersionsCap.TryCap(new ReadOnlySequence<byte>(frame), 3, new ArrayBufferWriter<byte>());
        Assert.Equal(RewriteStatus.Unchanged, result.Status);
        Assert.Single(result.Conflicts);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(7)]
    public void Unsupported_version_error_reply_in_the_v0_layout_is_parsed_and_capped(short requestedVersion)
    {
        // What an Apache Kafka broker sends for a too-new ApiVersions request (KIP-511): v0 body,
        // error 35, its full API list.
        var frame = Encode(0, KafkaErrors.UnsupportedVersion, BrokerApis);
        var output = new ArrayBufferWriter<byte>();
        var result = ApiVersionsCap.TryCap(new ReadOnlySequence<byte>(frame), requestedVersion, output);
        Assert.Equal(RewriteStatus.Rewritten, result.Status);
        Assert.Equal(Encode(0, KafkaErrors.UnsupportedVersion, Capped(BrokerApis)), output.WrittenSpan.ToArray());
    }

    [Fact]
    public void Unsupported_version_error_in_the_requested_layout_is_parsed_too()
    {
        var frame = Encode(3, KafkaErrors.UnsupportedVersion, [(KafkaApiKeys.ApiVersions, 0, 9)]);
        var output = new ArrayBufferWriter<byte>();
        var result = ApiVersionsCap.TryCap(new ReadOnlySequence<byte>(frame), 3, output);
        Assert.Equal(RewriteStatus.Rewritten, result.Status);
        Assert.Equal(Encode(3, KafkaErrors.UnsupportedVersion, [(KafkaApiKeys.ApiVersions, 0, 4)]), output.WrittenSpan.ToArray());
    }

    [Fact]
    public void Malformed_bodies_are_reported()
    {
        var frame = Encode(3, 0, BrokerApis);
        for (var length = 0; length < frame.Length; length++)
        {
            var truncated = frame[..length];
            if (length >= 4)
            {
                BinaryPrimitives.WriteInt32BigEndian(truncated, length - 4);
            }

            var result = ApiVersionsCap.TryCap(new ReadOnlySequence<byte>(truncated), 3, new ArrayBufferWriter<byte>());
            Assert.Equal(RewriteStatus.Malformed, result.Status);
        }

        var tooNew = ApiVersionsCap.TryCap(new ReadOnlySequence<byte>(frame), 5, new ArrayBufferWriter<byte>());
        Assert.Equal(RewriteResult.Malformed(MalformedReason.UnsupportedVersion), tooNew);
    }
}
