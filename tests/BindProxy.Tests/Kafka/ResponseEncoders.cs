using BindProxy.Kafka.Rewriting;

namespace BindProxy.Tests.Kafka;

internal sealed record BrokerModel(int NodeId, string Host, int Port, string? Rack, IReadOnlyList<TaggedField>? Tags = null);

/// <summary>
/// Test-side encoders for every version of the responses the proxy rewrites, written field by field
/// from the apache/kafka message schemas. Each struct gets unknown tagged fields where the version
/// allows them, so tests prove those survive.
/// </summary>
internal static class ResponseEncoders
{
    public const int CorrelationId = 0x0102_0304;

    private static readonly TaggedField[] HeaderTags = [new(7, [0xAB, 0xCD])];
    private static readonly TaggedField[] StructTags = [new(5, [1, 2, 3])];
    private static readonly TaggedField[] TopLevelTags = [new(9, [9, 8, 7, 6])];

    public static IReadOnlyList<BrokerModel> Brokers(int count) =>
        Enumerable.Range(1, count)
            .Select(i => new BrokerModel(i * 1000 + i, $"broker-{i}.kafka.internal", 9092 + i, i % 2 == 0 ? null : $"rack-{i}", [new TaggedField(3, [(byte)i])]))
            .ToList();

    public static IReadOnlyList<BrokerModel> Map(IReadOnlyList<BrokerModel> brokers, IBrokerAddressMapper mapper) =>
        brokers.Select(b =>
        {
            if (b.NodeId < 0 || b.Host.Length == 0)
            {
                return b;
            }

            var (host, port) = mapper.Map(b.NodeId, b.Host, b.Port);
            return b with { Host = host, Port = port };
        }).ToList();

    private static WireWriter Header(bool flexible)
    {
        var w = new WireWriter().Int32(CorrelationId);
        return flexible ? w.Tags(HeaderTags) : w;
    }

    public static byte[] Metadata(short v, IReadOnlyList<BrokerModel> brokers)
    {
        var flex = v >= 9;
        var w = Header(flex);
        if (v >= 3)
        {
            w.Int32(25);
        }

        w.ArrayCount(flex, brokers.Count);
        foreach (var b in brokers)
        {
            w.Int32(b.NodeId).String(flex, b.Host).Int32(b.Port);
            if (v >= 1)
            {
                w.String(flex, b.Rack);
            }

            if (flex)
            {
                w.Tags(b.Tags);
            }
        }

        if (v >= 2)
        {
            w.String(flex, "cluster-xyz");
        }

        if (v >= 1)
        {
            w.Int32(brokers.Count > 0 ? brokers[0].NodeId : -1);
        }

        w.ArrayCount(flex, 2);
        for (var t = 0; t < 2; t++)
        {
            w.Int16(0).String(flex, $"topic-{t}");
            if (v >= 10)
            {
                w.Uuid(t);
            }

            if (v >= 1)
            {
                w.Bool(t == 1);
            }

            w.ArrayCount(flex, 2);
            for (var p = 0; p < 2; p++)
            {
                w.Int16(0).Int32(p).Int32(1001);
                if (v >= 7)
                {
                    w.Int32(5);
                }

                w.Int32Array(flex, 1001, 2002).Int32Array(flex, 1001);
                if (v >= 5)
                {
                    w.Int32Array(flex);
                }

                if (flex)
                {
                    w.Tags(StructTags);
                }
            }

            if (v >= 8)
            {
                w.Int32(int.MinValue);
            }

            if (flex)
            {
                w.Tags(null);
            }
        }

        if (v is >= 8 and <= 10)
        {
            w.Int32(int.MinValue);
        }

        if (v >= 13)
        {
            w.Int16(0);
        }

        if (flex)
        {
            w.Tags(TopLevelTags);
        }

        return w.ToFrame();
    }

    /// <summary>v0-v3 encode the first broker only (or "no coordinator" when none); v4+ all of them.</summary>
    public static byte[] FindCoordinator(short v, IReadOnlyList<BrokerModel> brokers)
    {
        var flex = v >= 3;
        var w = Header(flex);
        if (v >= 1)
        {
            w.Int32(0);
        }

        if (v < 4)
        {
            var b = brokers.Count > 0 ? brokers[0] : new BrokerModel(-1, string.Empty, -1, null);
            w.Int16((short)(brokers.Count > 0 ? 0 : 15));
            if (v >= 1)
            {
                w.String(flex, brokers.Count > 0 ? null : "The coordinator is not available.");
            }

            w.Int32(b.NodeId).String(flex, b.Host).Int32(b.Port);
            if (flex)
            {
                w.Tags(TopLevelTags);
            }

            return w.ToFrame();
        }

        w.ArrayCount(true, brokers.Count);
        foreach (var b in brokers)
        {
            w.String(true, $"group-{b.NodeId}").Int32(b.NodeId).String(true, b.Host).Int32(b.Port).Int16(0).String(true, null).Tags(b.Tags);
        }

        return w.Tags(TopLevelTags).ToFrame();
    }

    public static byte[] DescribeCluster(short v, IReadOnlyList<BrokerModel> brokers)
    {
        var w = Header(true).Int32(0).Int16(0).String(true, null);
        if (v >= 1)
        {
            w.Int8(1);
        }

        w.String(true, "cluster-xyz").Int32(1).ArrayCount(true, brokers.Count);
        foreach (var b in brokers)
        {
            w.Int32(b.NodeId).String(true, b.Host).Int32(b.Port).String(true, b.Rack);
            if (v >= 2)
            {
                w.Bool(b.NodeId % 2 == 0);
            }

            w.Tags(b.Tags);
        }

        return w.Int32(int.MinValue).Tags(TopLevelTags).ToFrame();
    }

    private static byte[] NodeEndpoints(IReadOnlyList<BrokerModel> endpoints)
    {
        var w = new WireWriter().ArrayCount(true, endpoints.Count);
        foreach (var e in endpoints)
        {
            w.Int32(e.NodeId).String(true, e.Host).Int32(e.Port).String(true, e.Rack).Tags(e.Tags);
        }

        return w.ToArray();
    }

    /// <summary>Top-level tags: NodeEndpoints as tag 0 (when given), then an unknown tag.</summary>
    private static WireWriter EndpointTags(WireWriter w, IReadOnlyList<BrokerModel>? endpoints)
    {
        var fields = new List<TaggedField>();
        if (endpoints is not null)
        {
            fields.Add(new TaggedField(0, NodeEndpoints(endpoints)));
        }

        fields.AddRange(TopLevelTags);
        return w.Tags(fields);
    }

    /// <summary>Produce v9+ (flexible); NodeEndpoints only from v10.</summary>
    public static byte[] Produce(short v, IReadOnlyList<BrokerModel>? endpoints)
    {
        var w = Header(true).ArrayCount(true, 2);
        for (var t = 0; t < 2; t++)
        {
            w.String(true, $"topic-{t}").ArrayCount(true, 2);
            for (var p = 0; p < 2; p++)
            {
                w.Int32(p).Int16((short)(p == 1 ? 6 : 0)).Int64(100 + p).Int64(-1).Int64(0);
                if (p == 1)
                {
                    w.ArrayCount(true, 1).Int32(0).String(true, "bad record").Tags(null);
                }
                else
                {
                    w.ArrayCount(true, 0);
                }

                w.String(true, p == 1 ? "not leader" : null);
                // CurrentLeader (tag 0 of the partition) must stay verbatim.
                w.Tags(p == 1 ? [new TaggedField(0, new WireWriter().Int32(2002).Int32(7).Tags(null).ToArray())] : null);
            }

            w.Tags(null);
        }

        w.Int32(0);
        return EndpointTags(w, v >= 10 ? endpoints : null).ToFrame();
    }

    /// <summary>Fetch v12+ (flexible); NodeEndpoints only from v16.</summary>
    public static byte[] Fetch(short v, IReadOnlyList<BrokerModel>? endpoints)
    {
        var w = Header(true).Int32(0).Int16(0).Int32(12345).ArrayCount(true, 2);
        for (var t = 0; t < 2; t++)
        {
            if (v >= 13)
            {
                w.Uuid(t);
            }
            else
            {
                w.String(true, $"topic-{t}");
            }

            w.ArrayCount(true, 2);
            for (var p = 0; p < 2; p++)
            {
                w.Int32(p).Int16(0).Int64(50).Int64(50).Int64(0);
                if (p == 0)
                {
                    w.ArrayCount(true, 1).Int64(77).Int64(3).Tags(null);
                }
                else
                {
                    w.UVarint(0);
                }

                w.Int32(-1).Bytes(true, p == 0 ? Enumerable.Range(0, 300).Select(i => (byte)i).ToArray() : null);
                w.Tags(p == 1 ? [new TaggedField(1, new WireWriter().Int32(2002).Int32(7).Tags(null).ToArray())] : null);
            }

            w.Tags(null);
        }

        return EndpointTags(w, v >= 16 ? endpoints : null).ToFrame();
    }

    public static byte[] ShareFetch(IReadOnlyList<BrokerModel> endpoints)
    {
        var w = Header(true).Int32(0).Int16(0).String(true, null).ArrayCount(true, 1).Uuid(1).ArrayCount(true, 2);
        for (var p = 0; p < 2; p++)
        {
            w.Int32(p).Int16(0).String(true, null).Int16(0).String(true, p == 1 ? "ack failed" : null);
            w.Int32(1001).Int32(3).Tags(null);
            w.Bytes(true, [1, 2, 3, 4]);
            w.ArrayCount(true, 1).Int64(10).Int64(20).Int16(1).Tags(null);
            w.Tags(StructTags);
        }

        w.Tags(null);
        w.Raw(NodeEndpoints(endpoints));
        return w.Tags(TopLevelTags).ToFrame();
    }

    public static byte[] ShareAcknowledge(IReadOnlyList<BrokerModel> endpoints)
    {
        var w = Header(true).Int32(0).Int16(0).String(true, null).ArrayCount(true, 2);
        for (var t = 0; t < 2; t++)
        {
            w.Uuid(t).ArrayCount(true, 1).Int32(0).Int16(0).String(true, null).Int32(1001).Int32(3).Tags(null).Tags(null);
            w.Tags(null);
        }

        w.Raw(NodeEndpoints(endpoints));
        return w.Tags(TopLevelTags).ToFrame();
    }
}
