using System.Net;
using System.Net.Sockets;

namespace BindProxy.Wireshark;

/// <summary>Wireshark display filters and tshark command lines that isolate one source address's upstream traffic.</summary>
internal static class CaptureFilters
{
    /// <summary><c>ip.addr==127.0.0.2 &amp;&amp; tcp.port==9092</c>; several ports become a set (comma-separated: Wireshark 4 rejects spaces there).</summary>
    public static string Wireshark(IPAddress source, IReadOnlyCollection<int> ports)
    {
        var field = source.AddressFamily == AddressFamily.InterNetworkV6 ? "ipv6.addr" : "ip.addr";
        return ports.Count switch
        {
            0 => $"{field}=={source}",
            1 => $"{field}=={source} && tcp.port=={ports.First()}",
            _ => $"{field}=={source} && tcp.port in {{{string.Join(',', ports)}}}",
        };
    }

    /// <summary>
    /// A tshark command with a capture filter (BPF), so only that traffic is captured at all:
    /// <c>tshark -i lo -f 'host 127.0.0.2 and tcp port 9092'</c>.
    /// </summary>
    public static string Tshark(IPAddress source, IReadOnlyCollection<int> ports)
    {
        var portFilter = ports.Count switch
        {
            0 => null,
            1 => $"tcp port {ports.First()}",
            _ => $"({string.Join(" or ", ports.Select(p => $"tcp port {p}"))})",
        };
        return Tshark(source, portFilter);
    }

    /// <summary>The same with a port filter term of the caller's (BPF), or none: every port of <paramref name="source"/>.</summary>
    public static string Tshark(IPAddress source, string? portFilter) =>
        $"tshark -i {Interface(source)} -f 'host {source}{(portFilter is null ? "" : $" and {portFilter}")}'";

    /// <summary>A tshark command for a display filter, for what a capture filter cannot say briefly (address ranges).</summary>
    public static string TsharkDisplay(IPAddress anySource, string displayFilter) =>
        $"tshark -i {Interface(anySource)} -Y '{displayFilter}'";

    /// <summary>Loopback traffic is only seen on <c>lo</c>; anything else may leave by any interface.</summary>
    private static string Interface(IPAddress source) => IPAddress.IsLoopback(source) ? "lo" : "any";
}
