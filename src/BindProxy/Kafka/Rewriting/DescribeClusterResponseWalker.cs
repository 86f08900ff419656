using BindProxy.Kafka.Protocol;

namespace BindProxy.Kafka.Rewriting;

/// <summary>DescribeCluster (key 60) v0-v2, flexible at every version.</summary>
/// <remarks>
/// <code>
/// throttle_time_ms int32 | error_code int16 | error_message nullable string
/// | [endpoint_type int8 (v1+)] | cluster_id string | controller_id int32
/// | brokers: compact array of
///       broker_id int32 | host string | port int32 | rack nullable string | [is_fenced bool (v2+)] | tags
/// | cluster_authorized_operations int32 | tags
/// </code>
/// </remarks>
internal static class DescribeClusterResponseWalker
{

    public static bool Walk(ref KafkaWireReader reader, short version, ResponseEditor editor)
    {
        if (!reader.TrySkip(4 + 2)
            || !reader.TrySkipString(compact: true)
            || (version >= 1 && !reader.TrySkip(1))
            || !reader.TrySkipString(compact: true)
            || !reader.TrySkip(4)
            || !reader.TryReadArrayCount(compact: true, out var brokers))
        {
            return false;
        }

        for (var i = 0; i < brokers; i++)
        {
            if (!reader.TryReadInt32(out var brokerId)
                || !editor.TryMapHostPort(ref reader, brokerId, compact: true)
                || !reader.TrySkipString(compact: true)
                || (version >= 2 && !reader.TrySkip(1))
                || !reader.TrySkipTaggedFields())
            {
                return false;
            }
        }

        return reader.TrySkip(4) && reader.TrySkipTaggedFields() && reader.TryExpectEnd();
    }
}
