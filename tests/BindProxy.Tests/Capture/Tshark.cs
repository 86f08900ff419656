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
    public static Task<IReadOnlyList<string>> ProblemsAsync(string file, params string[] decodeAs) =>
        ProblemsAsync(file, "(_ws.expert.group == 0x02000000 && _ws.expert.severity >= 0x00600000 && !tcp.connection.rst) || _ws.malformed || _ws.expert.group == 0x07000000", decodeAs);

    /// <summary>
    /// The sequence group's warnings alone: whether Wireshark takes the packets as real TCP, whatever
    /// a protocol dissector (a heuristic one guessing at Kafka's bytes, say) makes of their payload.
    /// </summary>
    public static Task<IReadOnlyList<string>> SequenceProblemsAsync(string file) =>
        ProblemsAsync(file, "_ws.expert.group == 0x02000000 && _ws.expert.severity >= 0x00600000 && !tcp.connection.rst", []);

    private static async Task<IReadOnlyList<string>> ProblemsAsync(string file, string filter, string[] decodeAs)
    {
        var tshark = ExternalTool.Require("tshark");
        // PI_SEQUENCE is 0x02000000, PI_WARN 0x00600000; PI_MALFORMED 0x07000000.
        var args = new List<string> { "-r", file };
        foreach (var d in decodeAs)
        {
            args.AddRange(["-d", d]);
        }

        args.AddRange(["-Y", filter, "-T", "fields", "-e", "frame.number", "-e", "_ws.expert.message"]);
        var output = await ExternalTool.RunAsync(tshark, [.. args]);
        return [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries)];
    }

    /// <summary>
    /// The same problems as <see cref="ProblemsAsync"/>, by connection (its endpoints in order) and
    /// message, counted: for comparing two captures of the same traffic whose frames differ in number.
    /// </summary>
    public static async Task<IReadOnlyDictionary<string, int>> ProblemCountsAsync(string file, IReadOnlySet<string> connections, params string[] decodeAs)
    {
        var tshark = ExternalTool.Require("tshark");
        var args = new List<string> { "-r", file };
        foreach (var d in decodeAs)
        {
            args.AddRange(["-d", d]);
        }

        args.AddRange(["-Y", "(_ws.expert.group == 0x02000000 && _ws.expert.severity >= 0x00600000 && !tcp.connection.rst) || _ws.malformed || _ws.expert.group == 0x07000000",
            "-T", "fields", "-e", "ip.src", "-e", "tcp.srcport", "-e", "ip.dst", "-e", "tcp.dstport", "-e", "_ws.expert.message"]);
        var counts = new Dictionary<string, int>();
        foreach (var f in (await ExternalTool.RunAsync(tshark, [.. args])).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')))
        {
            var connection = string.Join(' ', new[] { $"{f[0]}:{f[1]}", $"{f[2]}:{f[3]}" }.Order(StringComparer.Ordinal));
            if (connections.Contains(connection))
            {
                var key = $"{connection} {f[4]}";
                counts[key] = counts.GetValueOrDefault(key) + 1;
            }
        }

        return counts;
    }

    /// <summary>
    /// Every TCP stream's payload both ways (<c>-z follow,tcp,raw</c>), keyed by the two endpoints,
    /// opener first; with <paramref name="keys"/>, only those streams.
    /// </summary>
    public static async Task<IReadOnlyDictionary<string, (byte[] FromOpener, byte[] ToOpener)>> StreamsAsync(string file, IReadOnlySet<string>? keys = null)
    {
        var tshark = ExternalTool.Require("tshark");
        // A stream's opener sends the SYN without ACK: the same node 0 as follow's.
        var openings = (await ExternalTool.RunAsync(tshark, "-r", file, "-Y", "tcp.flags.syn == 1 && tcp.flags.ack == 0", "-T", "fields",
                "-e", "tcp.stream", "-e", "ip.src", "-e", "tcp.srcport", "-e", "ip.dst", "-e", "tcp.dstport"))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t'))
            .Select(f => (Stream: int.Parse(f[0], CultureInfo.InvariantCulture), Key: $"{f[1]}:{f[2]} {f[3]}:{f[4]}"))
            .Where(o => keys is null || keys.Contains(o.Key));
        var streams = new Dictionary<string, (byte[], byte[])>();
        foreach (var (stream, _) in openings)
        {
            var text = await ExternalTool.RunAsync(tshark, "-r", file, "-q", "-z", $"follow,tcp,raw,{stream}");
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
