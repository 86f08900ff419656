using System.Diagnostics.CodeAnalysis;
using BindProxy.Addressing;

namespace BindProxy.Configuration;

/// <summary>Broker hosts a Kafka route may connect to: host names (exact) and address sets.</summary>
internal sealed class BrokerAllowlist(IReadOnlyList<string> names, IReadOnlyList<AddressSet> addresses, string text)
{
    public bool Allows(string host) =>
        names.Contains(host, StringComparer.OrdinalIgnoreCase) ||
        (AddressSet.TryParseAddress(host, out var address) && addresses.Any(a => a.Contains(address)));

    public override string ToString() => text;

    public static bool TryParse(string text, [NotNullWhen(true)] out BrokerAllowlist? allowlist, out string error)
    {
        var names = new List<string>();
        var addresses = new List<AddressSet>();
        foreach (var item in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (AddressSet.TryParse(item, out var set, out _))
            {
                addresses.Add(set);
            }
            else if (Uri.CheckHostName(item) == UriHostNameType.Dns)
            {
                names.Add(item);
            }
            else
            {
                allowlist = null;
                error = $"'{item}' is neither a host name nor an address, range or CIDR block";
                return false;
            }
        }

        allowlist = new BrokerAllowlist(names, addresses, text);
        error = names.Count + addresses.Count == 0 ? "is empty" : "";
        return error.Length == 0;
    }
}
