using System.Buffers;
using BindProxy.Kafka.Protocol;
using BindProxy.Kafka.Rewriting;

namespace BindProxy.Tests.Kafka;

/// <summary>Maps odd node ids to a long host (multi-byte lengths) and even ones to a short one.</summary>
internal sealed class TestMapper : IBrokerAddressMapper
{
    public (string Host, int Port) Map(int nodeId, string host, int port) =>
        nodeId % 2 == 1
            ? (new string('p', 140) + $".node{nodeId}.proxy", 20000 + (nodeId % 1000))
            : ($"127.0.0.{(nodeId % 250) + 1}", 30000 + (nodeId % 1000));
}

/// <summary>Maps through a fixed table; unknown brokers keep their address.</summary>
internal sealed class TableMapper(IReadOnlyDictionary<(string Host, int Port), (string Host, int Port)> table) : IBrokerAddressMapper
{
    public (string Host, int Port) Map(int nodeId, string host, int port) =>
        table.TryGetValue((host, port), out var mapped) ? mapped : (host, port);
}

/// <summary>Records every broker it is asked about and delegates (or keeps the address).</summary>
internal sealed class RecordingMapper(IBrokerAddressMapper? inner = null) : IBrokerAddressMapper
{
    public List<(int NodeId, string Host, int Port)> Seen { get; } = [];

    public (string Host, int Port) Map(int nodeId, string host, int port)
    {
        Seen.Add((nodeId, host, port));
        return inner?.Map(nodeId, host, port) ?? (host, port);
    }
}

internal static class TestSupport
{
    /// <summary>Builds a multi-segment sequence cut at the given offsets (ascending, inside the data).</summary>
    public static ReadOnlySequence<byte> Segmented(byte[] data, IEnumerable<int> cuts)
    {
        var points = cuts.Where(c => c > 0 && c < data.Length).Distinct().Order().Append(data.Length).ToList();
        if (points.Count == 1)
        {
            return new ReadOnlySequence<byte>(data);
        }

        Segment? first = null;
        Segment? last = null;
        var start = 0;
        foreach (var point in points)
        {
            // Copy each piece so no two segments share memory, as with real pipe buffers.
            var piece = data.AsMemory(start, point - start).ToArray();
            last = last is null ? first = new Segment(piece, 0) : last.Append(piece);
            start = point;
        }

        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    /// <summary>Every segment one byte long: the harshest split.</summary>
    public static ReadOnlySequence<byte> ByteByByte(byte[] data) => Segmented(data, Enumerable.Range(1, Math.Max(0, data.Length - 1)));

    public static (RewriteResult Result, byte[] Output) Rewrite(in ReadOnlySequence<byte> frame, short apiKey, short apiVersion, IBrokerAddressMapper mapper)
    {
        var output = new ArrayBufferWriter<byte>();
        var result = KafkaResponseRewriter.TryRewrite(frame, apiKey, apiVersion, mapper, output);
        if (result.Status != RewriteStatus.Rewritten)
        {
            Assert.Equal(0, output.WrittenCount);
        }

        return (result, output.WrittenSpan.ToArray());
    }

    public static (RewriteResult Result, byte[] Output) Rewrite(byte[] frame, short apiKey, short apiVersion, IBrokerAddressMapper mapper) =>
        Rewrite(new ReadOnlySequence<byte>(frame), apiKey, apiVersion, mapper);

    public static byte[] RequestFrame(short apiKey, short apiVersion, int correlationId, string? clientId, Action<WireWriter>? body = null)
    {
        var w = new WireWriter().Int16(apiKey).Int16(apiVersion).Int32(correlationId);
        if (KafkaApis.Of(apiKey).RequestHeaderVersion(apiVersion) >= 1)
        {
            w.String(false, clientId);
        }

        if (KafkaApis.Of(apiKey).RequestHeaderVersion(apiVersion) >= 2)
        {
            w.Tags([new TaggedField(1, [42])]);
        }

        body?.Invoke(w);
        return w.ToFrame();
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
