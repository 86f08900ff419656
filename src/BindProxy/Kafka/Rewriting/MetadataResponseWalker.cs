using BindProxy.Kafka.Protocol;

namespace BindProxy.Kafka.Rewriting;

/// <summary>Metadata (key 3) v0-v13: broker addresses sit in the Brokers array, before the topics.</summary>
/// <remarks>
/// <code>
/// [throttle_time_ms int32 (v3+)]
/// brokers: array of
///     node_id int32 | host string | port int32 | [rack nullable string (v1+)] | [tags (v9+)]
/// cluster_id, controller_id, topics ... , tags   -- copied verbatim, never parsed
/// </code>
/// Only the prefix is parsed, so later versions that only append fields after the topics
/// (v13 added a top-level error code) need no further code.
/// </remarks>
internal static class MetadataResponseWalker
{

    public static bool Walk(ref KafkaWireReader reader, short version, ResponseEditor editor)
    {
        var flexible = KafkaApis.Of(KafkaApiKeys.Metadata).IsFlexible(version);
        if (version >= 3 && !reader.TrySkip(4))
        {
            return false;
        }

        if (!reader.TryReadArrayCount(flexible, out var brokers))
        {
            return false;
        }

        for (var i = 0; i < brokers; i++)
        {
            if (!reader.TryReadInt32(out var nodeId) || !editor.TryMapHostPort(ref reader, nodeId, flexible))
            {
                return false;
            }

            if (version >= 1 && !reader.TrySkipString(flexible))
            {
                return false;
            }

            if (flexible && !reader.TrySkipTaggedFields())
            {
                return false;
            }
        }

        return true;
    }
}
