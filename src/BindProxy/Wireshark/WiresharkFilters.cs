using System.Net.Sockets;
using BindProxy.Addressing;
using BindProxy.Configuration;

namespace BindProxy.Wireshark;

/// <summary>
/// The Wireshark display filters and capture (BPF) filters that isolate what the configuration
/// and the running proxy describe: a pool of source addresses, a set of ports, a route's upstream
/// traffic. The settings know nothing of Wireshark; these
/// extensions put them in its words.
/// </summary>
internal static class WiresharkFilters
{
    extension(AddressSet addresses)
    {
        /// <summary>A display-filter term that matches exactly these addresses: <c>ip.addr in {127.0.0.2..127.0.0.4}</c>.</summary>
        public string ToWiresharkFilter()
        {
            var field = addresses.Family == AddressFamily.InterNetworkV6 ? "ipv6.addr" : "ip.addr";
            if (addresses.IsSingle)
            {
                return $"{field}=={addresses[0]}";
            }

            // Wireshark 4 (Debian 12's tshark 4.0) rejects whitespace between set members.
            var members = addresses.Ranges.Select(r => r.First.Equals(r.Last) ? $"{r.First}" : $"{r.First}..{r.Last}");
            return $"{field} in {{{string.Join(',', members)}}}";
        }
    }

    extension(PortSet ports)
    {
        /// <summary>A display-filter term: <c>tcp.port in {8081,9092..9094}</c> (Wireshark 4.0 rejects spaces between members).</summary>
        public string ToWiresharkFilter() =>
            ports.Ranges is [var only] && only.First == only.Last
                ? $"tcp.port=={only.First}"
                : $"tcp.port in {{{string.Join(",", ports.Ranges.Select(r => r.First == r.Last ? $"{r.First}" : $"{r.First}..{r.Last}"))}}}";

        /// <summary>A capture (BPF) filter term: <c>(tcp port 8081 or tcp portrange 9092-9094)</c>.</summary>
        public string ToCaptureFilter() =>
            "(" + string.Join(" or ", ports.Ranges.Select(r => r.First == r.Last ? $"tcp port {r.First}" : $"tcp portrange {r.First}-{r.Last}")) + ")";
    }

    extension(RouteModel route)
    {
        /// <summary>
        /// The display filter that shows exactly this route's upstream traffic. A Kafka route's
        /// brokers listen on ports its configuration does not name (every broker the cluster
        /// advertises, and under interception every port learnt later), so its filter is the
        /// source addresses alone: they carry nothing else.
        /// </summary>
        public string WiresharkFilter => route.Kafka is not null
            ? route.Sources.Addresses.ToWiresharkFilter()
            : route.Intercept is { } intercept
                ? $"{route.Sources.Addresses.ToWiresharkFilter()} && {intercept.Ports.ToWiresharkFilter()}"
                : $"{route.Sources.Addresses.ToWiresharkFilter()} && tcp.port=={route.Upstream.Port}";

        /// <summary>
        /// A tshark command that captures this route's upstream traffic live: a capture (BPF)
        /// filter for one source address, so nothing else is captured at all; the display filter
        /// for a pool (address ranges have no short capture-filter form).
        /// </summary>
        public string TsharkCommand => route.Sources.Addresses is { IsSingle: true } single
            ? CaptureFilters.Tshark(single[0], route.Kafka is not null ? null
                : route.Intercept is { } intercept ? intercept.Ports.ToCaptureFilter()
                : $"tcp port {route.Upstream.Port}")
            : CaptureFilters.TsharkDisplay(route.Sources.Addresses[0], route.WiresharkFilter);
    }
}
