using System.Buffers;
using System.Text;
using BindProxy.Kafka.Protocol;
using BindProxy.Kafka.Protocol.Messages;

namespace BindProxy.Kafka.Rewriting;

/// <summary>
/// The single entry point for response rewriting, on the generated message model: broker addresses
/// in the responses that carry them become what <see cref="IBrokerAddressMapper"/> says, and
/// ApiVersions is capped to the versions the model knows (<see cref="ApiVersionsCap"/>). Everything
/// else is reported <see cref="RewriteStatus.Unchanged"/> without being read, so the caller forwards
/// the original slice without a copy.
/// </summary>
/// <remarks>
/// Where the addresses sit, and what is read to reach them:
/// <code>
/// Metadata v0+            Brokers[NodeId, Host, Port, ...]           whole body read and written
/// FindCoordinator v0-3    NodeId, Host, Port at the top              whole body
///                 v4+     Coordinators[Key, NodeId, Host, Port, ...] whole body
/// DescribeCluster v0+     Brokers[BrokerId, Host, Port, ...]         whole body
/// ShareFetch, ShareAcknowledge v0+  NodeEndpoints, a last field      whole body (records stay slices)
/// Produce v10+, Fetch v16+          NodeEndpoints, top-level tag 0   topics stepped over (generated
///                                   (KIP-951), after every topic     skip, nothing built); only the
///                                                                    tag block is read and written
/// </code>
/// A rewritten frame is the original header bytes, then the body written again, so every field
/// the proxy does not change (unknown tagged fields included) goes on as it came; so do any bytes
/// after the body's last field.
/// </remarks>
internal static class KafkaResponseRewriter
{
    private const int ClassicStringMaxBytes = short.MaxValue;

    /// <summary>The first version of each API whose responses can name brokers.</summary>
    private static readonly Dictionary<short, short> FirstVersionWithAddresses = new()
    {
        [KafkaApiKeys.Metadata] = 0,
        [KafkaApiKeys.FindCoordinator] = 0,
        [KafkaApiKeys.DescribeCluster] = 0,
        [KafkaApiKeys.Produce] = 10,
        [KafkaApiKeys.Fetch] = 16,
        [KafkaApiKeys.ShareFetch] = 0,
        [KafkaApiKeys.ShareAcknowledge] = 0,
    };

    [ThreadStatic]
    private static KafkaWriter? t_writer;

    /// <summary>The APIs whose responses can name brokers, each with its first such version.</summary>
    public static IReadOnlyDictionary<short, short> AddressCarryingApis => FirstVersionWithAddresses;

    /// <summary>True when responses of this (key, version) may carry broker addresses.</summary>
    public static bool Rewrites(short apiKey, short apiVersion) =>
        FirstVersionWithAddresses.TryGetValue(apiKey, out var first) && apiVersion >= first;

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
            return ApiVersionsCap.TryCap(frame, apiVersion, output);
        }

        if (!Rewrites(apiKey, apiVersion))
        {
            return RewriteResult.Unchanged;
        }

        if (!KafkaApis.Of(apiKey).Knows(apiVersion))
        {
            return RewriteResult.Malformed(MalformedReason.UnsupportedVersion);
        }

        if (!KafkaResponseHeader.HasConsistentSize(frame))
        {
            return RewriteResult.Malformed(MalformedReason.InvalidLength);
        }

        var reader = new KafkaReader(frame);
        if (!KafkaResponseHeader.TrySkip(ref reader, apiKey, apiVersion))
        {
            return RewriteResult.Malformed(reader.Error);
        }

        return apiKey is KafkaApiKeys.Produce or KafkaApiKeys.Fetch
            ? RewriteTopLevelTags(frame, ref reader, apiKey, apiVersion, mapper, output)
            : RewriteBody(frame, ref reader, apiKey, apiVersion, mapper, output);
    }

    /// <summary>Reads the whole body, maps its brokers, and writes it again if any changed.</summary>
    private static RewriteResult RewriteBody(in ReadOnlySequence<byte> frame, ref KafkaReader reader, short apiKey, short version, IBrokerAddressMapper mapper, IBufferWriter<byte> output)
    {
        var bodyStart = reader.Position;
        var body = KafkaApis.CreateResponse(apiKey)!;
        if (!body.TryRead(ref reader, version))
        {
            return RewriteResult.Malformed(reader.Error);
        }

        // Bytes after the last field go on as they came: librdkafka's mock cluster ends its
        // Metadata v13 responses with one byte more than the definitions have.
        var trailing = frame.Slice(reader.Position);

        var edit = new BrokerEdit(mapper, compact: KafkaApis.Of(apiKey).IsFlexible(version));
        switch (body)
        {
            case MetadataResponseData metadata:
                foreach (var b in metadata.Brokers)
                {
                    (b.Host, b.Port) = edit.Map(b.NodeId, b.Host, b.Port);
                }

                break;
            case FindCoordinatorResponseData coordinator:
                (coordinator.Host, coordinator.Port) = edit.Map(coordinator.NodeId, coordinator.Host, coordinator.Port);
                foreach (var c in coordinator.Coordinators)
                {
                    (c.Host, c.Port) = edit.Map(c.NodeId, c.Host, c.Port);
                }

                break;
            case DescribeClusterResponseData cluster:
                foreach (var b in cluster.Brokers)
                {
                    (b.Host, b.Port) = edit.Map(b.BrokerId, b.Host, b.Port);
                }

                break;
            case ShareFetchResponseData shareFetch:
                foreach (var e in shareFetch.NodeEndpoints)
                {
                    (e.Host, e.Port) = edit.Map(e.NodeId, e.Host, e.Port);
                }

                break;
            case ShareAcknowledgeResponseData shareAcknowledge:
                foreach (var e in shareAcknowledge.NodeEndpoints)
                {
                    (e.Host, e.Port) = edit.Map(e.NodeId, e.Host, e.Port);
                }

                break;
        }

        if (edit.Error != MalformedReason.None)
        {
            return RewriteResult.Malformed(edit.Error);
        }

        if (!edit.Changed)
        {
            return RewriteResult.Unchanged;
        }

        var writer = Writer();
        body.Write(writer, version);
        writer.Write(trailing);
        WriteFrame(frame, bodyStart, writer, output);
        return RewriteResult.Rewritten;
    }

    /// <summary>
    /// Produce and Fetch: steps over every topic with the generated skip (nothing built, records not
    /// touched), then reads only the top-level tag block, where KIP-951's NodeEndpoints sit. A response
    /// without tags (every response but a leader change's) is done at its last byte, having allocated nothing.
    /// </summary>
    private static RewriteResult RewriteTopLevelTags(in ReadOnlySequence<byte> frame, ref KafkaReader reader, short apiKey, short version, IBrokerAddressMapper mapper, IBufferWriter<byte> output)
    {
        var skipped = apiKey == KafkaApiKeys.Produce
            ? ProduceResponseData.TrySkipFields(ref reader, version)
            : FetchResponseData.TrySkipFields(ref reader, version);
        if (!skipped)
        {
            return RewriteResult.Malformed(reader.Error);
        }

        var tagsStart = reader.Position;
        if (!reader.ReadTaggedFieldCount(out var count))
        {
            return RewriteResult.Malformed(reader.Error);
        }

        if (count == 0)
        {
            return reader.ExpectEnd() ? RewriteResult.Unchanged : RewriteResult.Malformed(reader.Error);
        }

        var tags = new KafkaReader(frame.Slice(tagsStart));
        var edit = new BrokerEdit(mapper, compact: true);
        IKafkaMessage body;
        if (apiKey == KafkaApiKeys.Produce)
        {
            var produce = new ProduceResponseData();
            if (!produce.TryReadTaggedFields(ref tags, version) || !tags.ExpectEnd())
            {
                return RewriteResult.Malformed(tags.Error);
            }

            foreach (var e in produce.NodeEndpoints)
            {
                (e.Host, e.Port) = edit.Map(e.NodeId, e.Host, e.Port);
            }

            body = produce;
        }
        else
        {
            var fetch = new FetchResponseData();
            if (!fetch.TryReadTaggedFields(ref tags, version) || !tags.ExpectEnd())
            {
                return RewriteResult.Malformed(tags.Error);
            }

            foreach (var e in fetch.NodeEndpoints)
            {
                (e.Host, e.Port) = edit.Map(e.NodeId, e.Host, e.Port);
            }

            body = fetch;
        }

        if (edit.Error != MalformedReason.None)
        {
            return RewriteResult.Malformed(edit.Error);
        }

        if (!edit.Changed)
        {
            return RewriteResult.Unchanged;
        }

        // The original bytes up to the tag block (header and every topic), then the block written again.
        var writer = Writer();
        writer.Write(frame.Slice(KafkaResponseHeader.SizePrefixLength, tagsStart - KafkaResponseHeader.SizePrefixLength));
        if (body is ProduceResponseData p)
        {
            p.WriteTaggedFields(writer, version);
        }
        else
        {
            ((FetchResponseData)body).WriteTaggedFields(writer, version);
        }

        WriteFrame(frame, KafkaResponseHeader.SizePrefixLength, writer, output, copyHeader: false);
        return RewriteResult.Rewritten;
    }

    /// <summary>Size prefix, the frame's own bytes from after the prefix to <paramref name="bodyStart"/>, then what <paramref name="body"/> holds.</summary>
    private static void WriteFrame(in ReadOnlySequence<byte> frame, long bodyStart, KafkaWriter body, IBufferWriter<byte> output, bool copyHeader = true)
    {
        var header = copyHeader ? frame.Slice(KafkaResponseHeader.SizePrefixLength, bodyStart - KafkaResponseHeader.SizePrefixLength) : default;
        var size = checked((int)header.Length + body.Length);
        var span = output.GetSpan(KafkaResponseHeader.SizePrefixLength + size);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(span, size);
        header.CopyTo(span[KafkaResponseHeader.SizePrefixLength..]);
        body.WrittenSpan.CopyTo(span[(KafkaResponseHeader.SizePrefixLength + (int)header.Length)..]);
        output.Advance(KafkaResponseHeader.SizePrefixLength + size);
    }

    private static KafkaWriter Writer()
    {
        var writer = t_writer ??= new KafkaWriter(4096);
        writer.Reset();
        return writer;
    }

    /// <summary>Maps one broker at a time and remembers whether anything changed, or what went wrong.</summary>
    private sealed class BrokerEdit(IBrokerAddressMapper mapper, bool compact)
    {
        public bool Changed { get; private set; }

        public MalformedReason Error { get; private set; }

        public (string Host, int Port) Map(int nodeId, string host, int port)
        {
            // NodeId -1 with an empty host is how FindCoordinator says "no coordinator": nothing to map.
            if (nodeId < 0 || string.IsNullOrEmpty(host))
            {
                return (host, port);
            }

            var (newHost, newPort) = mapper.Map(nodeId, host, port);
            if (newPort == port && string.Equals(newHost, host, StringComparison.Ordinal))
            {
                return (host, port);
            }

            if (!compact && Encoding.UTF8.GetByteCount(newHost) > ClassicStringMaxBytes)
            {
                Error = MalformedReason.MappedHostTooLong;
                return (host, port);
            }

            Changed = true;
            return (newHost, newPort);
        }
    }
}
