using BindProxy.Kafka.Protocol;

namespace BindProxy.Kafka.Rewriting;

/// <summary>
/// Responses that tell the client where a partition's new leader lives (KIP-951): Produce v10+ and
/// Fetch v16+ in top-level tagged field 0, ShareFetch and ShareAcknowledge as a regular last field.
/// The whole response is walked because the endpoints come after every topic and partition.
/// </summary>
/// <remarks>
/// Every body here is flexible (compact strings/arrays, a tag block closing each struct). The
/// NodeEndpoints struct is the same in all four:
/// <code>
/// node_endpoints: compact array of
///     node_id int32 | host string | port int32 | rack nullable string | tags
/// </code>
/// In Produce/Fetch it is wrapped as tag 0 of the top-level tag block:
/// <code>
/// tags: uvarint count, then per field: uvarint tag | uvarint size | size bytes
///                                                    ^ recomputed when hosts change length
/// </code>
/// </remarks>
internal static class NodeEndpointsResponseWalker
{
    private const uint NodeEndpointsTag = 0;

    /// <summary>
    /// Produce v10+:
    /// <code>
    /// responses: compact array of
    ///     name string
    ///     | partition_responses: compact array of
    ///           index int32 | error_code int16 | base_offset int64 | log_append_time_ms int64
    ///           | log_start_offset int64
    ///           | record_errors: compact array of (batch_index int32 | message nullable string | tags)
    ///           | error_message nullable string | tags (CurrentLeader = tag 0, kept verbatim)
    ///     | tags
    /// | throttle_time_ms int32 | tags (NodeEndpoints = tag 0)
    /// </code>
    /// </summary>
    public static bool WalkProduce(ref KafkaWireReader reader, ResponseEditor editor)
    {
        if (!reader.TryReadArrayCount(compact: true, out var topics))
        {
            return false;
        }

        for (var t = 0; t < topics; t++)
        {
            if (!reader.TrySkipString(compact: true) || !reader.TryReadArrayCount(compact: true, out var partitions))
            {
                return false;
            }

            for (var p = 0; p < partitions; p++)
            {
                if (!reader.TrySkip(4 + 2 + 8 + 8 + 8) || !reader.TryReadArrayCount(compact: true, out var recordErrors))
                {
                    return false;
                }

                for (var e = 0; e < recordErrors; e++)
                {
                    if (!reader.TrySkip(4) || !reader.TrySkipString(compact: true) || !reader.TrySkipTaggedFields())
                    {
                        return false;
                    }
                }

                if (!reader.TrySkipString(compact: true) || !reader.TrySkipTaggedFields())
                {
                    return false;
                }
            }

            if (!reader.TrySkipTaggedFields())
            {
                return false;
            }
        }

        return reader.TrySkip(4) && WalkTopLevelTags(ref reader, editor) && reader.TryExpectEnd();
    }

    /// <summary>
    /// Fetch v16+:
    /// <code>
    /// throttle_time_ms int32 | error_code int16 | session_id int32
    /// | responses: compact array of
    ///     topic_id uuid
    ///     | partitions: compact array of
    ///           partition_index int32 | error_code int16 | high_watermark int64
    ///           | last_stable_offset int64 | log_start_offset int64
    ///           | aborted_transactions: compact nullable array of (producer_id int64 | first_offset int64 | tags)
    ///           | preferred_read_replica int32 | records compact nullable bytes | tags
    ///     | tags
    /// | tags (NodeEndpoints = tag 0)
    /// </code>
    /// </summary>
    public static bool WalkFetch(ref KafkaWireReader reader, ResponseEditor editor)
    {
        if (!reader.TrySkip(4 + 2 + 4) || !reader.TryReadArrayCount(compact: true, out var topics))
        {
            return false;
        }

        for (var t = 0; t < topics; t++)
        {
            if (!reader.TrySkip(KafkaWireConstants.UuidLength) || !reader.TryReadArrayCount(compact: true, out var partitions))
            {
                return false;
            }

            for (var p = 0; p < partitions; p++)
            {
                if (!reader.TrySkip(4 + 2 + 8 + 8 + 8) || !reader.TryReadArrayCount(compact: true, out var aborted))
                {
                    return false;
                }

                for (var a = 0; a < aborted; a++)
                {
                    if (!reader.TrySkip(8 + 8) || !reader.TrySkipTaggedFields())
                    {
                        return false;
                    }
                }

                if (!reader.TrySkip(4) || !reader.TrySkipBytes(compact: true) || !reader.TrySkipTaggedFields())
                {
                    return false;
                }
            }

            if (!reader.TrySkipTaggedFields())
            {
                return false;
            }
        }

        return WalkTopLevelTags(ref reader, editor) && reader.TryExpectEnd();
    }

    /// <summary>
    /// ShareFetch v0:
    /// <code>
    /// throttle_time_ms int32 | error_code int16 | error_message nullable string
    /// | responses: compact array of
    ///     topic_id uuid
    ///     | partitions: compact array of
    ///           partition_index int32 | error_code int16 | error_message nullable string
    ///           | acknowledge_error_code int16 | acknowledge_error_message nullable string
    ///           | current_leader (leader_id int32 | leader_epoch int32 | tags)
    ///           | records compact nullable bytes
    ///           | acquired_records: compact array of (first_offset int64 | last_offset int64 | delivery_count int16 | tags)
    ///           | tags
    ///     | tags
    /// | node_endpoints | tags
    /// </code>
    /// </summary>
    public static bool WalkShareFetch(ref KafkaWireReader reader, ResponseEditor editor)
    {
        if (!reader.TrySkip(4 + 2) || !reader.TrySkipString(compact: true) || !reader.TryReadArrayCount(compact: true, out var topics))
        {
            return false;
        }

        for (var t = 0; t < topics; t++)
        {
            if (!reader.TrySkip(KafkaWireConstants.UuidLength) || !reader.TryReadArrayCount(compact: true, out var partitions))
            {
                return false;
            }

            for (var p = 0; p < partitions; p++)
            {
                if (!reader.TrySkip(4 + 2)
                    || !reader.TrySkipString(compact: true)
                    || !reader.TrySkip(2)
                    || !reader.TrySkipString(compact: true)
                    || !reader.TrySkip(4 + 4)
                    || !reader.TrySkipTaggedFields()
                    || !reader.TrySkipBytes(compact: true)
                    || !reader.TryReadArrayCount(compact: true, out var acquired))
                {
                    return false;
                }

                for (var a = 0; a < acquired; a++)
                {
                    if (!reader.TrySkip(8 + 8 + 2) || !reader.TrySkipTaggedFields())
                    {
                        return false;
                    }
                }

                if (!reader.TrySkipTaggedFields())
                {
                    return false;
                }
            }

            if (!reader.TrySkipTaggedFields())
            {
                return false;
            }
        }

        return WalkNodeEndpoints(ref reader, editor) && reader.TrySkipTaggedFields() && reader.TryExpectEnd();
    }

    /// <summary>
    /// ShareAcknowledge v0:
    /// <code>
    /// throttle_time_ms int32 | error_code int16 | error_message nullable string
    /// | responses: compact array of
    ///     topic_id uuid
    ///     | partitions: compact array of
    ///           partition_index int32 | error_code int16 | error_message nullable string
    ///           | current_leader (leader_id int32 | leader_epoch int32 | tags) | tags
    ///     | tags
    /// | node_endpoints | tags
    /// </code>
    /// </summary>
    public static bool WalkShareAcknowledge(ref KafkaWireReader reader, ResponseEditor editor)
    {
        if (!reader.TrySkip(4 + 2) || !reader.TrySkipString(compact: true) || !reader.TryReadArrayCount(compact: true, out var topics))
        {
            return false;
        }

        for (var t = 0; t < topics; t++)
        {
            if (!reader.TrySkip(KafkaWireConstants.UuidLength) || !reader.TryReadArrayCount(compact: true, out var partitions))
            {
                return false;
            }

            for (var p = 0; p < partitions; p++)
            {
                if (!reader.TrySkip(4 + 2)
                    || !reader.TrySkipString(compact: true)
                    || !reader.TrySkip(4 + 4)
                    || !reader.TrySkipTaggedFields()
                    || !reader.TrySkipTaggedFields())
                {
                    return false;
                }
            }

            if (!reader.TrySkipTaggedFields())
            {
                return false;
            }
        }

        return WalkNodeEndpoints(ref reader, editor) && reader.TrySkipTaggedFields() && reader.TryExpectEnd();
    }

    private static bool WalkNodeEndpoints(ref KafkaWireReader reader, ResponseEditor editor)
    {
        if (!reader.TryReadArrayCount(compact: true, out var endpoints))
        {
            return false;
        }

        for (var i = 0; i < endpoints; i++)
        {
            if (!reader.TryReadInt32(out var nodeId)
                || !editor.TryMapHostPort(ref reader, nodeId, compact: true)
                || !reader.TrySkipString(compact: true)
                || !reader.TrySkipTaggedFields())
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Walks the top-level tag block, descending into tag 0 (NodeEndpoints) and stepping over every
    /// other tag by its declared size, so unknown tags survive byte-exact.
    /// </summary>
    private static bool WalkTopLevelTags(ref KafkaWireReader reader, ResponseEditor editor)
    {
        if (!reader.TryReadUVarint(out var fieldCount))
        {
            return false;
        }

        if (fieldCount > reader.Remaining / 2)
        {
            return reader.Fail(MalformedReason.CountExceedsRemaining);
        }

        for (var i = 0; i < fieldCount; i++)
        {
            if (!reader.TryReadUVarint(out var tag))
            {
                return false;
            }

            var sizeStart = reader.Position;
            if (!reader.TryReadUVarint(out var size))
            {
                return false;
            }

            var contentStart = reader.Position;
            if (size > reader.Remaining)
            {
                return reader.Fail(MalformedReason.Truncated);
            }

            if (tag != NodeEndpointsTag)
            {
                reader.TrySkip(size);
                continue;
            }

            editor.BeginSizedRegion(sizeStart, contentStart, size);
            if (!WalkNodeEndpoints(ref reader, editor))
            {
                return false;
            }

            if (reader.Position != contentStart + size)
            {
                return reader.Fail(MalformedReason.TaggedFieldSizeMismatch);
            }
        }

        return true;
    }
}
