using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;

namespace BindProxy.Addressing;

/// <summary>
/// A set of endpoints that share one port per item: <c>127.0.0.1:9092</c>, <c>[::1]:9092</c>,
/// <c>127.0.0.1-127.0.0.8:9092</c>, <c>127.0.1.0/29:9092</c>, or a comma-separated list of those.
/// Used for listen endpoints (one listener per address) and for upstream address fan-out.
/// </summary>
internal sealed class EndpointSpec
{
    /// <summary>Upper bound on the endpoints one spec may expand to; each is a real socket.</summary>
    public const int MaxEndpoints = 4096;

    private EndpointSpec(IReadOnlyList<(AddressSet Addresses, int Port)> items, string text)
    {
        Items = items;
        Text = text;
        Count = items.Sum(i => i.Addresses.Count);
    }

    public IReadOnlyList<(AddressSet Addresses, int Port)> Items { get; }

    public string Text { get; }

    public long Count { get; }

    public AddressFamily Family => Items[0].Addresses.Family;

    public bool IsSingleFamily => Items.All(i => i.Addresses.Family == Family);

    public IPEndPoint this[long index]
    {
        get
        {
            foreach (var (addresses, port) in Items)
            {
                if (index < addresses.Count)
                {
                    return new IPEndPoint(addresses[index], port);
                }

                index -= addresses.Count;
            }

            throw new ArgumentOutOfRangeException(nameof(index));
        }
    }

    /// <summary>Endpoint <paramref name="index"/> as a one-element array, made once and then shared.</summary>
    public IPEndPoint[] AsArray(long index)
    {
        var arrays = _arrays ??= new IPEndPoint[Count][];
        return arrays[index] ??= [this[index]];
    }

    private IPEndPoint[][]? _arrays;

    public IEnumerable<IPEndPoint> Endpoints
    {
        get
        {
            for (long i = 0; i < Count; i++)
            {
                yield return this[i];
            }
        }
    }

    public override string ToString() => Text;

    public static bool TryParse(string? text, bool allowPortZero, [NotNullWhen(true)] out EndpointSpec? spec, out string error)
    {
        spec = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "is empty; expected ADDR:PORT, e.g. 127.0.0.1:19092";
            return false;
        }

        var items = new List<(AddressSet, int)>();
        foreach (var raw in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!TrySplitHostPort(raw, out var host, out var portText))
            {
                error = $"'{raw}' has no port; expected ADDR:PORT (IPv6 in brackets: [::1]:9092)";
                return false;
            }

            if (!TryParsePort(portText, allowPortZero, out int port, out error))
            {
                error = $"'{raw}' {error}";
                return false;
            }

            if (!AddressSet.TryParse(host, out var addresses, out error))
            {
                error = $"'{raw}': address {error}";
                return false;
            }

            items.Add((addresses, port));
        }

        if (items.Count == 0)
        {
            error = "is empty; expected ADDR:PORT";
            return false;
        }

        spec = new EndpointSpec(items, string.Join(",", items.Select(i => $"{i.Item1}:{i.Item2}")));
        if (spec.Count > MaxEndpoints)
        {
            error = $"expands to {spec.Count} endpoints; at most {MaxEndpoints} are allowed";
            return false;
        }

        error = "";
        return true;
    }

    /// <summary>Splits <c>host:port</c>, <c>[v6]:port</c> or <c>[v6-range]:port</c> at the port's colon.</summary>
    internal static bool TrySplitHostPort(string text, out string host, out string port)
    {
        text = text.Trim();
        int colon;
        if (text.StartsWith('['))
        {
            int close = text.IndexOf(']', StringComparison.Ordinal);
            colon = close >= 0 && close + 1 < text.Length && text[close + 1] == ':' ? close + 1 : -1;
        }
        else
        {
            colon = text.LastIndexOf(':');
            if (colon >= 0 && text.IndexOf(':', StringComparison.Ordinal) != colon)
            {
                colon = -1; // bare IPv6 address: ambiguous without brackets
            }
        }

        if (colon <= 0)
        {
            host = port = "";
            return false;
        }

        host = text[..colon];
        port = text[(colon + 1)..];
        return true;
    }

    internal static bool TryParsePort(string text, bool allowZero, out int port, out string error)
    {
        if (!int.TryParse(text, out port))
        {
            error = $"has port '{text}', which is not a number";
            return false;
        }

        if (port < (allowZero ? 0 : 1) || port > 65535)
        {
            error = $"has port {port}, out of range {(allowZero ? 0 : 1)}-65535";
            return false;
        }

        error = "";
        return true;
    }
}
