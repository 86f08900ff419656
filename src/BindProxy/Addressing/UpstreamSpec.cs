using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;

namespace BindProxy.Addressing;

/// <summary>
/// Where a route connects: a host name and port (resolved at connect time), or an address set
/// with one port (<c>127.0.0.1-127.0.0.8:9000</c>), spread round-robin.
/// </summary>
internal sealed class UpstreamSpec
{
    private UpstreamSpec(string? host, EndpointSpec? endpoints, int port, string text)
    {
        Host = host;
        Endpoints = endpoints;
        Port = port;
        Text = text;
    }

    /// <summary>The host name, when the upstream is given by name.</summary>
    public string? Host { get; }

    /// <summary>The literal endpoints, when the upstream is given by address.</summary>
    public EndpointSpec? Endpoints { get; }

    /// <summary>The port of the first item (all of them for a name).</summary>
    public int Port { get; }

    public string Text { get; }

    public AddressFamily? LiteralFamily => Endpoints?.Family;

    public override string ToString() => Text;

    /// <summary>
    /// The upstream of an intercepting route: each connection's own original destination, which the
    /// connection handler passes to the connector. Resolves to nothing on its own.
    /// </summary>
    public static UpstreamSpec OriginalDestination(PortSet ports) =>
        new(null, null, ports.Ranges.Count > 0 ? ports.Ranges[0].First : 0, $"original destination (ports {ports})");

    public static bool TryParse(string? text, [NotNullWhen(true)] out UpstreamSpec? spec, out string error)
    {
        spec = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "is empty; expected HOST:PORT, e.g. localhost:9092";
            return false;
        }

        text = text.Trim();
        if (!EndpointSpec.TrySplitHostPort(text.Split(',')[0], out var host, out var portText))
        {
            error = $"'{text}' has no port; expected HOST:PORT (IPv6 in brackets: [::1]:9092)";
            return false;
        }

        if (!EndpointSpec.TryParsePort(portText, allowZero: false, out int port, out error))
        {
            error = $"'{text}' {error}";
            return false;
        }

        // A literal address, range or list; anything else must be a host name.
        if (host.StartsWith('[') || AddressSet.TryParse(host, out _, out _) || text.Contains(',', StringComparison.Ordinal))
        {
            if (!EndpointSpec.TryParse(text, allowPortZero: false, out var endpoints, out error))
            {
                return false;
            }

            if (!endpoints.IsSingleFamily)
            {
                error = $"'{text}' mixes IPv4 and IPv6 addresses; one source family cannot reach both";
                return false;
            }

            spec = new UpstreamSpec(null, endpoints, port, endpoints.Text);
            return true;
        }

        if (Uri.CheckHostName(host) != UriHostNameType.Dns)
        {
            error = $"'{text}': '{host}' is neither an IP address nor a host name";
            return false;
        }

        spec = new UpstreamSpec(host, null, port, $"{host}:{port}");
        error = "";
        return true;
    }

    /// <summary>Addresses to try for one connection, in order, filtered to <paramref name="family"/>.</summary>
    public async ValueTask<IPEndPoint[]> ResolveAsync(AddressFamily family, long sequence, CancellationToken cancellationToken)
    {
        if (Endpoints is { } endpoints)
        {
            var chosen = endpoints.AsArray(sequence % endpoints.Count);
            return chosen[0].AddressFamily == family ? chosen : [];
        }

        if (Host is null)
        {
            return [];
        }

        var addresses = await Dns.GetHostAddressesAsync(Host, cancellationToken).ConfigureAwait(false);
        return [.. addresses
            .Select(a => a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a)
            .Where(a => a.AddressFamily == family)
            .Select(a => new IPEndPoint(a, Port))];
    }
}
