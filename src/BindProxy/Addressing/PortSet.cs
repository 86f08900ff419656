using System.Globalization;

namespace BindProxy.Addressing;

/// <summary>
/// A set of TCP ports written as ranges and single ports, <c>9092-9094,8081</c>: the destination
/// ports an interception redirects. Immutable; <see cref="With"/> gives a new set.
/// </summary>
internal sealed class PortSet
{
    private PortSet(IReadOnlyList<(int First, int Last)> ranges)
    {
        Ranges = ranges;
    }

    public static PortSet Empty { get; } = new([]);

    /// <summary>Sorted, non-overlapping, non-adjacent ranges.</summary>
    public IReadOnlyList<(int First, int Last)> Ranges { get; }

    public bool IsEmpty => Ranges.Count == 0;

    public static bool TryParse(string? text, out PortSet set, out string error)
    {
        set = Empty;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "is empty; expected ports such as 9092-9094,8081";
            return false;
        }

        var ranges = new List<(int, int)>();
        foreach (var item in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = item.Split('-', StringSplitOptions.TrimEntries);
            if (parts.Length > 2 || !TryPort(parts[0], out int first) || !TryPort(parts[^1], out int last))
            {
                error = $"'{item}' is not a port (1-65535) or a range of ports such as 9092-9094";
                return false;
            }

            if (last < first)
            {
                error = $"'{item}' ends before it starts";
                return false;
            }

            ranges.Add((first, last));
        }

        if (ranges.Count == 0)
        {
            error = "is empty; expected ports such as 9092-9094,8081";
            return false;
        }

        set = new PortSet(Normalize(ranges));
        error = "";
        return true;
    }

    public static PortSet Of(params int[] ports) => new(Normalize([.. ports.Select(p => (p, p))]));

    public bool Contains(int port) => Ranges.Any(r => port >= r.First && port <= r.Last);

    /// <summary>This set plus <paramref name="port"/> (this set itself when it already holds it).</summary>
    public PortSet With(int port) => Contains(port) ? this : new PortSet(Normalize([.. Ranges, (port, port)]));

    /// <summary>The ports of this set and of <paramref name="other"/>.</summary>
    public PortSet Union(PortSet other) => other.IsEmpty ? this : IsEmpty ? other : new PortSet(Normalize([.. Ranges, .. other.Ranges]));

    /// <summary>True when some port is in both sets.</summary>
    public bool Overlaps(PortSet other) => Ranges.Any(r => other.Ranges.Any(o => r.First <= o.Last && o.First <= r.Last));

    /// <summary>nft set elements: <c>8081, 9092-9094</c>.</summary>
    public string ToNftElements() => string.Join(", ", Ranges.Select(r => Format(r, "-")));

    public override string ToString() => string.Join(",", Ranges.Select(r => Format(r, "-")));

    private static string Format((int First, int Last) range, string dash) =>
        range.First == range.Last
            ? range.First.ToString(CultureInfo.InvariantCulture)
            : string.Create(CultureInfo.InvariantCulture, $"{range.First}{dash}{range.Last}");

    private static bool TryPort(string text, out int port) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out port) && port is >= 1 and <= 65535;

    private static List<(int First, int Last)> Normalize(List<(int First, int Last)> ranges)
    {
        ranges.Sort();
        var merged = new List<(int First, int Last)>();
        foreach (var range in ranges)
        {
            if (merged.Count > 0 && range.First <= merged[^1].Last + 1)
            {
                merged[^1] = (merged[^1].First, Math.Max(merged[^1].Last, range.Last));
            }
            else
            {
                merged.Add(range);
            }
        }

        return merged;
    }
}
