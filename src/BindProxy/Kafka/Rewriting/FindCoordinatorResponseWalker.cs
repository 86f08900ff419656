using BindProxy.Kafka.Protocol;

namespace BindProxy.Kafka.Rewriting;

/// <summary>FindCoordinator (key 10) v0-v6.</summary>
/// <remarks>
/// <code>
/// v0-v3:  [throttle_time_ms int32 (v1+)] | error_code int16 | [error_message nullable string (v1+)]
///         | node_id int32 | host string | port int32 | [tags (v3+)]
/// v4+:    throttle_time_ms int32
///         | coordinators: compact array of
///               key string | node_id int32 | host string | port int32 | error_code int16
///               | error_message nullable string | tags
///         | tags
/// </code>
/// </remarks>
internal static class FindCoordinatorResponseWalker
{
    private const short FirstBatchedVersion = 4;

    public static bool Walk(ref KafkaWireReader reader, short version, ResponseEditor editor)
    {
        var flexible = KafkaApis.Of(KafkaApiKeys.FindCoordinator).IsFlexible(version);
        if (version >= 1 && !reader.TrySkip(4))
        {
            return false;
        }

        if (version < FirstBatchedVersion)
        {
            if (!reader.TrySkip(2) || (version >= 1 && !reader.TrySkipString(flexible)))
            {
                return false;
            }

            if (!reader.TryReadInt32(out var nodeId) || !editor.TryMapHostPort(ref reader, nodeId, flexible))
            {
                return false;
            }

            return (!flexible || reader.TrySkipTaggedFields()) && reader.TryExpectEnd();
        }

        if (!reader.TryReadArrayCount(compact: true, out var coordinators))
        {
            return false;
        }

        for (var i = 0; i < coordinators; i++)
        {
            if (!reader.TrySkipString(compact: true)
                || !reader.TryReadInt32(out var nodeId)
                || !editor.TryMapHostPort(ref reader, nodeId, compact: true)
                || !reader.TrySkip(2)
                || !reader.TrySkipString(compact: true)
                || !reader.TrySkipTaggedFields())
            {
                return false;
            }
        }

        return reader.TrySkipTaggedFields() && reader.TryExpectEnd();
    }
}
