using System.Buffers;
using System.Buffers.Binary;
using BindProxy.Kafka.Protocol;
using BindProxy.Kafka.Protocol.Messages;

namespace BindProxy.Kafka.Rewriting;

/// <summary>
/// Caps what a broker's ApiVersions response offers to what the generated model knows: each API's
/// max version to the newest the model has definitions for, and APIs it has none for are taken
/// out. A client then never sends a version whose response the proxy could not read (the failure
/// behind kafka-proxy #85/#97/#177), and, the model being generated from a whole Kafka release,
/// negotiates the same versions through the proxy as directly. Minimum versions are never raised:
/// raising Produce's minimum silently disabled compression for librdkafka (Kroxylicious #2844).
/// </summary>
/// <remarks>
/// ApiVersions responses always use response header v0. A broker that does not support the
/// requested ApiVersions version answers UNSUPPORTED_VERSION (35) in the v0 layout, whatever was
/// asked, with its own list; that reply is capped too, because the client may pick versions from it.
/// </remarks>
internal static class ApiVersionsCap
{
    /// <summary>The newest version the model knows of <paramref name="apiKey"/>, or -1 when it knows none.</summary>
    public static short ModelCap(short apiKey) => KafkaApis.Of(apiKey) is { IsKnown: true } api ? api.MaxVersion : (short)-1;

    /// <summary>Caps with <see cref="ModelCap"/>.</summary>
    public static RewriteResult TryCap(in ReadOnlySequence<byte> frame, short requestVersion, IBufferWriter<byte> output) =>
        TryCap(frame, requestVersion, ModelCap, output);

    /// <param name="caps">Newest version per api key; negative = the key is taken out.</param>
    public static RewriteResult TryCap(in ReadOnlySequence<byte> frame, short requestVersion, Func<short, short> caps, IBufferWriter<byte> output)
    {
        if (frame.Length < KafkaResponseHeader.MinFrameLength + 2)
        {
            return RewriteResult.Malformed(MalformedReason.FrameTooShort);
        }

        if (!KafkaResponseHeader.HasConsistentSize(frame))
        {
            return RewriteResult.Malformed(MalformedReason.InvalidLength);
        }

        Span<byte> errorBytes = stackalloc byte[2];
        frame.Slice(KafkaResponseHeader.MinFrameLength, 2).CopyTo(errorBytes);
        var errorCode = BinaryPrimitives.ReadInt16BigEndian(errorBytes);

        // The error reply to a too-new request is v0-shaped. Try that first, and fall back to the
        // requested layout should a broker ever send the error in the requested version.
        ApiVersionsResponseData? body = null;
        short layout = requestVersion;
        var reason = MalformedReason.None;
        if (errorCode == KafkaErrors.UnsupportedVersion && requestVersion != 0)
        {
            layout = 0;
            body = Read(frame, 0, out reason);
            if (body is null)
            {
                layout = requestVersion;
                body = Read(frame, requestVersion, out _);
            }
        }
        else
        {
            body = Read(frame, requestVersion, out reason);
        }

        if (body is null)
        {
            // An UNSUPPORTED_VERSION reply only tells the client which ApiVersions version to retry
            // with; the retry's reply is the one whose versions it uses, and that one is capped.
            // librdkafka's mock cluster sends this reply in a shape that is neither v0 nor the
            // requested version (a one-byte entry count, no tags), so an unreadable error reply is
            // passed through rather than failing the connection.
            return errorCode == KafkaErrors.UnsupportedVersion ? RewriteResult.Unchanged : RewriteResult.Malformed(reason);
        }

        List<ApiVersionConflict>? conflicts = null;
        var changed = body.ApiKeys.RemoveAll(a => caps(a.ApiKey) < 0) > 0;
        foreach (var api in body.ApiKeys)
        {
            var cap = caps(api.ApiKey);
            if (api.MaxVersion <= cap)
            {
                continue;
            }

            if (api.MinVersion > cap)
            {
                (conflicts ??= []).Add(new ApiVersionConflict(api.ApiKey, api.MinVersion, api.MaxVersion, cap));
                continue;
            }

            api.MaxVersion = cap;
            changed = true;
        }

        var conflictList = (IReadOnlyList<ApiVersionConflict>?)conflicts ?? [];
        if (!changed)
        {
            return RewriteResult.Unchanged with { Conflicts = conflictList };
        }

        var writer = new KafkaWriter((int)frame.Length);
        var prefix = writer.ReserveInt32();
        writer.Write(frame.Slice(KafkaResponseHeader.SizePrefixLength, KafkaResponseHeader.MinFrameLength - KafkaResponseHeader.SizePrefixLength));
        body.Write(writer, layout);
        writer.PatchInt32(prefix, writer.Length - KafkaResponseHeader.SizePrefixLength);
        output.Write(writer.WrittenSpan);
        return RewriteResult.Rewritten with { Conflicts = conflictList };
    }

    private static ApiVersionsResponseData? Read(in ReadOnlySequence<byte> frame, short version, out MalformedReason reason)
    {
        reason = MalformedReason.None;
        if (!KafkaApis.Of(KafkaApiKeys.ApiVersions).Knows(version))
        {
            reason = MalformedReason.UnsupportedVersion;
            return null;
        }

        var reader = new KafkaReader(frame);
        reader.Skip(KafkaResponseHeader.MinFrameLength);
        var body = new ApiVersionsResponseData();
        if (body.TryRead(ref reader, version) && reader.ExpectEnd())
        {
            return body;
        }

        reason = reader.Error;
        return null;
    }
}
