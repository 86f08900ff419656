using System.Globalization;
using System.Net;

namespace BindProxy.Tests.Infrastructure;

/// <summary>The kernel's TCP socket table (<c>/proc/net/tcp</c> and <c>tcp6</c>): who is connected to whom.</summary>
public static class SocketTable
{
    public const int Established = 1;

    public const int SynSent = 2;

    /// <param name="Inode">0 for an orphan: a socket its process has closed, which the kernel still holds.</param>
    public sealed record Entry(IPEndPoint Local, IPEndPoint Remote, int State, long Inode)
    {
        /// <summary>Bytes sent and not yet acknowledged by the peer.</summary>
        public long TxQueue { get; init; }

        /// <summary>Bytes received that the socket's owner has not read yet.</summary>
        public long RxQueue { get; init; }
    }

    public static IReadOnlyList<Entry> Read()
    {
        var entries = new List<Entry>();
        foreach (var (file, v6) in new[] { ("/proc/net/tcp", false), ("/proc/net/tcp6", true) })
        {
            if (!File.Exists(file))
            {
                continue;
            }

            foreach (var line in File.ReadLines(file).Skip(1))
            {
                var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                var queues = f[4].Split(':');
                entries.Add(new Entry(Parse(f[1], v6), Parse(f[2], v6), int.Parse(f[3], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                    long.Parse(f[9], CultureInfo.InvariantCulture))
                {
                    TxQueue = long.Parse(queues[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                    RxQueue = long.Parse(queues[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                });
            }
        }

        return entries;
    }

    /// <summary>Established connections whose remote end is one of <paramref name="ports"/> on loopback.</summary>
    public static IReadOnlyList<Entry> ConnectionsTo(IEnumerable<int> ports)
    {
        var set = ports.ToHashSet();
        return [.. Read().Where(e => e.State == Established && set.Contains(e.Remote.Port))];
    }

    // The kernel prints addresses as hex of the in-memory (network order) bytes, word by word in host order.
    private static IPEndPoint Parse(string text, bool v6)
    {
        var parts = text.Split(':');
        var hex = parts[0];
        var bytes = new byte[hex.Length / 2];
        for (int word = 0; word < bytes.Length / 4; word++)
        {
            for (int b = 0; b < 4; b++)
            {
                bytes[word * 4 + b] = byte.Parse(hex.AsSpan(word * 8 + (3 - b) * 2, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            }
        }

        var address = new IPAddress(bytes);
        if (v6 && address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        return new IPEndPoint(address, int.Parse(parts[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture));
    }
}
