using System.Buffers;
using System.Buffers.Binary;
using BindProxy.Kafka.Protocol;

namespace BindProxy.Kafka.Rewriting;

/// <summary>
/// Caps the max version a broker advertises for every API the proxy rewrites, so clients never
/// send a version whose response the proxy cannot parse (the failure mode behind kafka-proxy
/// #85/#97/#177). Minimum versions are never raised: raising Produce's minimum silently disabled
/// compression for librdkafka (Kroxylicious #2844).
/// </summary>
/// <remarks>
/// Always response header v0 (correlation id only), whatever the version.
/// <code>
/// v0:     error_code int16 | api_keys: int32 count, then (api_key int16 | min int16 | max int16)
/// v1-v2:  v0 fields | throttle_time_ms int32
/// v3-v4:  error_code int16 | api_keys: compact array of (api_key int16 | min int16 | max int16 | tags)
///         | throttle_time_ms int32 | tags (supported/finalized features, kept verbatim)
/// </code>
/// A broker that does not support the requested ApiVersions version answers UNSUPPORTED_VERSION (35)
/// in the v0 layout, whatever version was asked for; that reply is capped too, because the client
/// may pick versions from it.
/// Max versions are fixed-width int16s, so capping patches bytes in place and the size never changes.
/// </remarks>
internal static class ApiVersionsCapper
{
    private const int EntryLength = 2 + 2 + 2;

    /// <summary>Caps with <see cref="KafkaResponseRewriter.MaxSupportedVersion"/>.</summary>
    public static RewriteResult TryCap(in ReadOnlySequence<byte> frame, short requestVersion, IBufferWriter<byte> output) =>
        TryCap(frame, requestVersion, KafkaResponseRewriter.MaxSupportedVersion, output);

    /// <param name="caps">Max parseable version per api key; negative = leave the key alone.</param>
    public static RewriteResult TryCap(
        in ReadOnlySequence<byte> frame,
        short requestVersion,
        Func<short, short> caps,
        IBufferWriter<byte> output)
    {
        if (frame.Length < KafkaResponseHeader.MinFrameLength + 2)
        {
            return RewriteResult.Malformed(MalformedReason.FrameTooShort);
        }

        if (!KafkaResponseHeader.HasConsistentSize(frame))
        {
            return RewriteResult.Malformed(MalformedReason.InvalidLength);
        }

        var probe = new KafkaWireReader(frame);
        probe.TrySkip(KafkaResponseHeader.MinFrameLength);
        probe.TryReadInt16(out var errorCode);

        // The error reply to a too-new request is v0-shaped. Try that first, and fall back to the
        // requested layout should a broker ever send the error in the requested version.
        List<(long Offset, short Cap)>? patches = null;
        List<ApiVersionConflict>? conflicts = null;
        MalformedReason reason;
        if (errorCode == KafkaWireConstants.UnsupportedVersion && requestVersion != 0)
        {
            reason = Walk(frame, 0, caps, ref patches, ref conflicts);
            if (reason != MalformedReason.None)
            {
                patches = null;
                conflicts = null;
                reason = Walk(frame, requestVersion, caps, ref patches, ref conflicts);
            }
        }
        else
        {
            reason = Walk(frame, requestVersion, caps, ref patches, ref conflicts);
        }

        if (reason != MalformedReason.None)
        {
            // An UNSUPPORTED_VERSION reply only tells the client which ApiVersions version to retry
            // with; the retry's reply is the one whose versions it uses, and that one is capped.
            // librdkafka's mock cluster sends this reply in a shape that is neither v0 nor the
            // requested version (a one-byte entry count, no tags), so an unparseable error reply is
            // passed through rather than failing the connection.
            return errorCode == KafkaWireConstants.UnsupportedVersion ? RewriteResult.Unchanged : RewriteResult.Malformed(reason);
        }

        var conflictList = (IReadOnlyList<ApiVersionConflict>?)conflicts ?? [];
        if (patches is null)
        {
            return RewriteResult.Unchanged with { Conflicts = conflictList };
        }

        var length = checked((int)frame.Length);
        var span = output.GetSpan(length)[..length];
        frame.CopyTo(span);
        foreach (var (offset, cap) in patches)
        {
            BinaryPrimitives.WriteInt16BigEndian(span[(int)offset..], cap);
        }

        output.Advance(length);
        return RewriteResult.Rewritten with { Conflicts = conflictList };
    }

    private static MalformedReason Walk(
        in ReadOnlySequence<byte> frame,
        short version,
        Func<short, short> caps,
        ref List<(long Offset, short Cap)>? patches,
        ref List<ApiVersionConflict>? conflicts)
    {
        if (version < 0 || version > KafkaApis.Of(KafkaApiKeys.ApiVersions).MaxParsed)
        {
            return MalformedReason.UnsupportedVersion;
        }

        var flexible = KafkaApis.Of(KafkaApiKeys.ApiVersions).IsFlexible(version);
        var reader = new KafkaWireReader(frame);
        reader.TrySkip(KafkaResponseHeader.MinFrameLength + 2);
        if (!reader.TryReadArrayCount(flexible, out var count))
        {
            return reader.Error;
        }

        if (count < 0 || count > reader.Remaining / EntryLength)
        {
            return MalformedReason.CountExceedsRemaining;
        }

        for (var i = 0; i < count; i++)
        {
            if (!reader.TryReadInt16(out var apiKey) || !reader.TryReadInt16(out var min))
            {
                return reader.Error;
            }

            var maxOffset = reader.Position;
            if (!reader.TryReadInt16(out var max) || (flexible && !reader.TrySkipTaggedFields()))
            {
                return reader.Error;
            }

            var cap = caps(apiKey);
            if (cap < 0 || max <= cap)
            {
                continue;
            }

            if (min > cap)
            {
                (conflicts ??= []).Add(new ApiVersionConflict(apiKey, min, max, cap));
                continue;
            }

            (patches ??= []).Add((maxOffset, cap));
        }

        if (version >= 1 && !reader.TrySkip(4))
        {
            return reader.Error;
        }

        if (flexible && !reader.TrySkipTaggedFields())
        {
            return reader.Error;
        }

        return reader.TryExpectEnd() ? MalformedReason.None : reader.Error;
    }
}
