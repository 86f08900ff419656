using System.Buffers.Binary;
using System.Globalization;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Capture;

/// <summary>Reads a capture file back with tshark: its expert findings, each TCP stream's payload, Kafka's requests.</summary>
public static class Tshark
{
    /// <summary>
    /// Expert items of warning severity or worse in the sequence group, and malformed packets:
    /// what Wireshark says when it does not take a capture as real TCP. One line each. A reset is
    /// a sequence warning too ("Connection reset"), and one the wire shows as well: not counted.
    /// </summary>
    public static async Task<IReadOnlyList<string>> ProblemsAsync(string file, params string[] decodeAs)
    {
        var tshark = ExternalTool.Require("tshark");
        // PI_SEQUENCE is 0x02000000, PI_WARN 0x00600000; PI_MALFORMED 0x07000000.
        var args = new List<string> { "-r", file };
        foreach (var d in decodeAs)
        {
            args.AddRange(["-d", d]);
        }

        args.AddRange(["-Y", "(_ws.expert.group == 0x02000000 && _ws.expert.severity >= 0x00600000 && !tcp.connection.rst) || _ws.malformed || _ws.expert.group == 0x07000000",
            "-T", "fields", "-e", "frame.number", "-e", "_ws.expert.message"]);
        var output = await ExternalTool.RunAsync(tshark, [.. args]);
        return [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries)];
    }

    /// <summary>Every TCP stream's payload both ways (<c>-z follow,tcp,raw</c>), keyed by the two endpoints, opener first.</summary>
    public static async Task<IReadOnlyDictionary<string, (byte[] FromOpener, byte[] ToOpener)>> StreamsAsync(string file)
    {
        var tshark = ExternalTool.Require("tshark");
        var count = (await ExternalTool.RunAsync(tshark, "-r", file, "-T", "fields", "-e", "tcp.stream"))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture)).DefaultIfEmpty(-1).Max() + 1;
        var streams = new Dictionary<string, (byte[], byte[])>();
        for (int i = 0; i < count; i++)
        {
            var text = await ExternalTool.RunAsync(tshark, "-r", file, "-q", "-z", $"follow,tcp,raw,{i}");
            var (key, up, down) = ParseFollow(text);
            streams[key] = (up, down);
        }

        return streams;
    }

    /// <summary>
    /// The follow output: "Node 0: addr:port" and "Node 1: …" then one hex line per segment, those
    /// from node 1 indented by a tab, between lines of '='.
    /// </summary>
    private static (string Key, byte[] FromNode0, byte[] FromNode1) ParseFollow(string text)
    {
        string? node0 = null, node1 = null;
        var from0 = new List<byte>();
        var from1 = new List<byte>();
        foreach (var raw in text.Split('\n'))
        {
            if (raw.StartsWith("Node 0: ", StringComparison.Ordinal))
            {
                node0 = raw[8..].Trim();
                continue;
            }

            if (raw.StartsWith("Node 1: ", StringComparison.Ordinal))
            {
                node1 = raw[8..].Trim();
                continue;
            }

            if (node1 is null || raw.StartsWith('=') || raw.Trim().Length == 0)
            {
                continue;
            }

            var target = raw.StartsWith('\t') ? from1 : from0;
            target.AddRange(Convert.FromHexString(raw.Trim()));
        }

        return ($"{node0} {node1}", [.. from0], [.. from1]);
    }

    /// <summary>The Kafka requests and responses as "request|response api_key correlation_id", in file order.</summary>
    public static async Task<IReadOnlyList<string>> KafkaAsync(string file, IEnumerable<int> ports, string? displayFilter = null)
    {
        var tshark = ExternalTool.Require("tshark");
        var args = new List<string> { "-r", file };
        foreach (var port in ports)
        {
            args.AddRange(["-d", $"tcp.port=={port},kafka"]);
        }

        args.AddRange(["-Y", displayFilter is null ? "kafka" : $"kafka && ({displayFilter})", "-T", "fields", "-E", "occurrence=a",
            "-e", "kafka.response_frame", "-e", "kafka.request_key", "-e", "kafka.correlationid"]);
        var output = await ExternalTool.RunAsync(tshark, [.. args]);
        return [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries)];
    }

    /// <summary>The interface statistics blocks of a pcapng file: (interface, received, dropped).</summary>
    public static IReadOnlyList<(int Interface, long Received, long Dropped)> Statistics(byte[] file)
    {
        var found = new List<(int, long, long)>();
        int at = 0;
        while (at + 12 <= file.Length)
        {
            uint type = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(at));
            int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(at + 4));
            if (type == 5)
            {
                int id = (int)BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(at + 8));
                long received = -1, dropped = -1;
                int option = at + 20;
                while (option + 4 <= at + length - 4)
                {
                    ushort code = BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(option));
                    ushort size = BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(option + 2));
                    if (code == 0)
                    {
                        break;
                    }

                    if (code == 4)
                    {
                        received = BinaryPrimitives.ReadInt64LittleEndian(file.AsSpan(option + 4));
                    }
                    else if (code == 5)
                    {
                        dropped = BinaryPrimitives.ReadInt64LittleEndian(file.AsSpan(option + 4));
                    }

                    option += 4 + ((size + 3) & ~3);
                }

                found.Add((id, received, dropped));
            }

            at += length;
        }

        return found;
    }
}
