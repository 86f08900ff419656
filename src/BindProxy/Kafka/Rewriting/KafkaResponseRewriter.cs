using System.Buffers;
using BindProxy.Kafka.Protocol;

namespace BindProxy.Kafka.Rewriting;

/// <summary>
/// The single entry point for response rewriting: broker addresses in the responses that carry
/// them are replaced with what <see cref="IBrokerAddressMapper"/> says, and ApiVersions is capped
/// to what this class can parse. Everything else is reported <see cref="RewriteStatus.Unchanged"/>
/// so the caller forwards the original slice without a copy.
/// </summary>
internal static class KafkaResponseRewriter
{
    /// <summary>
    /// Tries to rewrite one whole response <paramref name="frame"/> (size prefix included) answering a
    /// request of (<paramref name="apiKey"/>, <paramref name="apiVersion"/>). On
    /// <see cref="RewriteStatus.Rewritten"/> the new frame, size prefix included, is in
    /// <paramref name="output"/>; otherwise nothing was written.
    /// </summary>
    public static RewriteResult TryRewrite(
        in ReadOnlySequence<byte> frame,
        short apiKey,
        short apiVersion,
        IBrokerAddressMapper mapper,
        IBufferWriter<byte> output)
    {
        if (apiKey == KafkaApiKeys.ApiVersions)
        {
            return ApiVersionsCapper.TryCap(frame, apiVersion, output);
        }

        if (!Rewrites(apiKey, apiVersion))
        {
            return RewriteResult.Unchanged;
        }

        if (apiVersion > MaxSupportedVersion(apiKey))
        {
            return RewriteResult.Malformed(MalformedReason.UnsupportedVersion);
        }

        if (!KafkaResponseHeader.HasConsistentSize(frame))
        {
            return RewriteResult.Malformed(MalformedReason.InvalidLength);
        }

        var reader = new KafkaWireReader(frame);
        if (!SkipResponseHeader(ref reader, apiKey, apiVersion))
        {
            return RewriteResult.Malformed(reader.Error);
        }

        var editor = new ResponseEditor(mapper);
        var ok = apiKey switch
        {
            KafkaApiKeys.Metadata => MetadataResponseWalker.Walk(ref reader, apiVersion, editor),
            KafkaApiKeys.FindCoordinator => FindCoordinatorResponseWalker.Walk(ref reader, apiVersion, editor),
            KafkaApiKeys.DescribeCluster => DescribeClusterResponseWalker.Walk(ref reader, apiVersion, editor),
            KafkaApiKeys.Produce => NodeEndpointsResponseWalker.WalkProduce(ref reader, editor),
            KafkaApiKeys.Fetch => NodeEndpointsResponseWalker.WalkFetch(ref reader, editor),
            KafkaApiKeys.ShareFetch => NodeEndpointsResponseWalker.WalkShareFetch(ref reader, editor),
            KafkaApiKeys.ShareAcknowledge => NodeEndpointsResponseWalker.WalkShareAcknowledge(ref reader, editor),
            _ => true,
        };

        if (!ok)
        {
            return RewriteResult.Malformed(editor.Error != MalformedReason.None ? editor.Error : reader.Error);
        }

        if (!editor.HasChanges)
        {
            return RewriteResult.Unchanged;
        }

        return editor.TryWrite(frame, output) ? RewriteResult.Rewritten : RewriteResult.Malformed(editor.Error);
    }

    /// <summary>
    /// Highest version of <paramref name="apiKey"/> whose response this class parses, or -1 for APIs it
    /// never touches. ApiVersions responses are capped to these values.
    /// </summary>
    public static short MaxSupportedVersion(short apiKey) => KafkaApis.Of(apiKey).MaxParsed;

    /// <summary>True when responses of this (key, version) may carry broker addresses.</summary>
    public static bool Rewrites(short apiKey, short apiVersion) => KafkaApis.Of(apiKey).CarriesBrokerAddresses(apiVersion);

    /// <summary>
    /// <code>
    /// size int32 | correlation_id int32 | [tags (response header v1)]
    /// </code>
    /// </summary>
    private static bool SkipResponseHeader(ref KafkaWireReader reader, short apiKey, short apiVersion)
    {
        if (reader.Remaining < KafkaResponseHeader.MinFrameLength)
        {
            return reader.Fail(MalformedReason.FrameTooShort);
        }

        reader.TrySkip(KafkaResponseHeader.MinFrameLength);
        return KafkaHeaderVersions.ResponseHeaderVersion(apiKey, apiVersion) == 0 || reader.TrySkipTaggedFields();
    }
}
