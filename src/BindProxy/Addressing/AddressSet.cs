using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;

namespace BindProxy.Addressing;

/// <summary>
/// An ordered set of IP addresses of one family, written as a single address, a range
/// (<c>127.0.0.2-127.0.0.40</c> or <c>127.0.0.2-40</c>), a CIDR block (<c>127.0.1.0/24</c>)
/// or a comma-separated list of those. Ranges are kept as (start, count) pairs, so a /8 costs
/// no more memory than a single address.
/// </summary>
internal sealed class AddressSet
{
    private readonly Block[] _blocks;
    private readonly string _text;

    private AddressSet(Block[] blocks, AddressFamily family, string text)
    {
        _blocks = blocks;
        Family = family;
        _text = text;
        Count = SaturatingCount(blocks);
    }

    public AddressFamily Family { get; }

    /// <summary>Number of addresses (saturates for absurd IPv6 blocks).</summary>
    public long Count { get; }

    public bool IsSingle => Count == 1;

    /// <summary>Sets up to this size keep the address objects they hand out (a source pool is read per connection).</summary>
    private const int CachedCount = 4096;

    private IPAddress?[]? _cache;

    public IPAddress this[long index]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfNegative(index);
            if (Count <= CachedCount && index < Count)
            {
                var cache = _cache ??= new IPAddress?[Count];
                return cache[index] ??= Compute(index);
            }

            return Compute(index);
        }
    }

    private IPAddress Compute(long index)
    {
        foreach (var block in _blocks)
        {
            if ((UInt128)index < block.Count)
            {
                return ToAddress(block.Start + (UInt128)index, Family);
            }

            index -= (long)block.Count;
        }

        throw new ArgumentOutOfRangeException(nameof(index));
    }

    public IEnumerable<IPAddress> Take(long max)
    {
        for (long i = 0; i < Math.Min(max, Count); i++)
        {
            yield return this[i];
        }
    }

    public bool Contains(IPAddress address)
    {
        if (address.AddressFamily != Family)
        {
            return false;
        }

        var value = ToNumber(address);
        return _blocks.Any(b => value >= b.Start && value - b.Start < b.Count);
    }

    public override string ToString() => _text;

    /// <summary>The set as ranges of consecutive addresses, first and last of each (equal for a single address), in order.</summary>
    public IEnumerable<(IPAddress First, IPAddress Last)> Ranges =>
        _blocks.Select(b => (ToAddress(b.Start, Family), ToAddress(b.Start + b.Count - 1, Family)));

    public static AddressSet Single(IPAddress address)
    {
        address = Normalize(address);
        return new AddressSet([new Block(ToNumber(address), 1)], address.AddressFamily, Format(address));
    }

    public static bool TryParse(string? text, [NotNullWhen(true)] out AddressSet? set, out string error)
    {
        set = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "is empty; expected an address, a range (127.0.0.2-127.0.0.40), a CIDR block (127.0.1.0/24) or a comma-separated list";
            return false;
        }

        var blocks = new List<Block>();
        AddressFamily? family = null;
        foreach (var raw in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!TryParseItem(raw, out var block, out var itemFamily, out error))
            {
                return false;
            }

            if (family is { } f && f != itemFamily)
            {
                error = $"mixes IPv4 and IPv6 addresses ('{raw}'); use one family per set";
                return false;
            }

            family = itemFamily;
            if (blocks.Any(b => Overlaps(b, block)))
            {
                error = $"lists '{raw}' twice (it overlaps an earlier item)";
                return false;
            }

            blocks.Add(block);
        }

        if (blocks.Count == 0 || family is null)
        {
            error = "is empty; expected an address, a range, a CIDR block or a list";
            return false;
        }

        set = new AddressSet([.. blocks], family.Value, string.Join(",", text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)));
        error = "";
        return true;
    }

    private static bool TryParseItem(string item, out Block block, out AddressFamily family, out string error)
    {
        block = default;
        family = default;
        item = item.Trim();
        if (item.StartsWith('[') && item.EndsWith(']'))
        {
            item = item[1..^1];
        }

        int slash = item.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            if (!TryParseAddress(item[..slash], out var network) ||
                !int.TryParse(item.AsSpan(slash + 1), out int prefix))
            {
                error = $"'{item}' is not a CIDR block such as 127.0.1.0/24";
                return false;
            }

            family = network.AddressFamily;
            int bits = family == AddressFamily.InterNetwork ? 32 : 128;
            if (prefix < 0 || prefix > bits)
            {
                error = $"'{item}' has prefix length {prefix}; it must be 0-{bits}";
                return false;
            }

            var value = ToNumber(network);
            var size = UInt128.One << (bits - prefix);
            if (prefix == 0 && bits == 128)
            {
                size = UInt128.MaxValue;
            }

            var start = value & ~(size - 1);
            if (start != value)
            {
                error = $"'{item}' has host bits set; the block starts at {ToAddress(start, family)}/{prefix}";
                return false;
            }

            // Like an interface's address range, an IPv4 block of /30 or wider leaves out its
            // network and broadcast addresses.
            if (family == AddressFamily.InterNetwork && prefix <= 30)
            {
                start += 1;
                size -= 2;
            }

            block = new Block(start, size);
            error = "";
            return true;
        }

        int dash = item.IndexOf('-', StringComparison.Ordinal);
        if (dash >= 0)
        {
            string left = item[..dash].Trim(), right = item[(dash + 1)..].Trim();
            if (!TryParseAddress(left, out var first))
            {
                error = $"'{item}' is not a range such as 127.0.0.2-127.0.0.40";
                return false;
            }

            family = first.AddressFamily;
            IPAddress? last = null;
            if (TryParseAddress(right, out var full))
            {
                last = full;
            }
            else if (family == AddressFamily.InterNetwork && byte.TryParse(right, out byte lastOctet))
            {
                // Short form 127.0.0.2-40: the end replaces the last octet.
                var bytes = first.GetAddressBytes();
                bytes[3] = lastOctet;
                last = new IPAddress(bytes);
            }

            if (last is null || last.AddressFamily != family)
            {
                error = $"'{item}' is not a range such as 127.0.0.2-127.0.0.40";
                return false;
            }

            UInt128 a = ToNumber(first), b = ToNumber(last);
            if (b < a)
            {
                error = $"'{item}' ends before it starts";
                return false;
            }

            block = new Block(a, b - a + 1 == 0 ? UInt128.MaxValue : b - a + 1);
            error = "";
            return true;
        }

        if (!TryParseAddress(item, out var single))
        {
            error = $"'{item}' is not an IP address";
            return false;
        }

        family = single.AddressFamily;
        block = new Block(ToNumber(single), 1);
        error = "";
        return true;
    }

    internal static bool TryParseAddress(string text, out IPAddress address)
    {
        text = text.Trim();
        if (text.StartsWith('[') && text.EndsWith(']'))
        {
            text = text[1..^1];
        }

        // IPAddress.TryParse accepts "1" or "127.1" as IPv4; demand the dotted quad for clarity.
        if (IPAddress.TryParse(text, out var parsed) &&
            (parsed.AddressFamily == AddressFamily.InterNetworkV6 || text.Count(c => c == '.') == 3))
        {
            address = Normalize(parsed);
            return true;
        }

        address = IPAddress.None;
        return false;
    }

    private static IPAddress Normalize(IPAddress address) =>
        address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    private static string Format(IPAddress address) =>
        address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();

    private static bool Overlaps(Block x, Block y) =>
        x.Start <= y.Start ? y.Start - x.Start < x.Count : x.Start - y.Start < y.Count;

    internal static UInt128 ToNumber(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out int written);
        UInt128 value = 0;
        for (int i = 0; i < written; i++)
        {
            value = (value << 8) | bytes[i];
        }

        return value;
    }

    internal static IPAddress ToAddress(UInt128 value, AddressFamily family)
    {
        int length = family == AddressFamily.InterNetwork ? 4 : 16;
        Span<byte> bytes = stackalloc byte[length];
        for (int i = length - 1; i >= 0; i--)
        {
            bytes[i] = (byte)(value & 0xFF);
            value >>= 8;
        }

        return new IPAddress(bytes);
    }

    private static long SaturatingCount(Block[] blocks)
    {
        UInt128 total = 0;
        foreach (var b in blocks)
        {
            total += b.Count;
            if (total >= long.MaxValue || total < b.Count)
            {
                return long.MaxValue;
            }
        }

        return (long)total;
    }

    private readonly record struct Block(UInt128 Start, UInt128 Count);
}
