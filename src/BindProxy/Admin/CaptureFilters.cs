using System.Net;
using System.Net.Sockets;

namespace BindProxy.Admin;

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
        var portClause = ports.Count switch
        {
            0 => "",
            1 => $" and tcp port {ports.First()}",
            _ => $" and ({string.Join(" or ", ports.Select(p => $"tcp port {p}"))})",
        };
        return $"tshark -i {Interface(source)} -f 'host {source}{portClause}'";
    }

    /// <summary>Loopback traffic is only seen on <c>lo</c>; anything else may leave by any interface.</summary>
    private static string Interface(IPAddress source) => IPAddress.IsLoopback(source) ? "lo" : "any";
}
