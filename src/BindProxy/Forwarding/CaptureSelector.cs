using BindProxy.Addressing;
using BindProxy.Capture;

namespace BindProxy.Forwarding;

/// <summary>
/// Which connections a capture takes: every selector given must hold (none given: every Tcp and
/// Kafka connection). <see cref="Route"/> names a route or its family (a Kafka route with its broker
/// listeners); <see cref="ClientId"/> is a Kafka client.id (from per-client assignment, or the first
/// request); <see cref="Source"/> holds the proxy's source address or the client's address;
/// <see cref="Pid"/> and <see cref="Process"/> need the process to be known (an intercepted
/// connection, or assignment by process); <see cref="Connection"/> is an id of /api/connections.
/// </summary>
internal sealed record CaptureSelector(
    string? Route = null,
    string? ClientId = null,
    AddressSet? Source = null,
    int? Pid = null,
    string? Process = null,
    long? Connection = null,
    CaptureLegs Legs = CaptureLegs.Both)
{
    /// <summary>The selectors as written, for the capture's section comment.</summary>
    public string Describe()
    {
        var parts = new List<string>();
        Add("route", Route);
        Add("client", ClientId);
        Add("source", Source?.ToString());
        Add("pid", Pid?.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Add("process", Process);
        Add("connection", Connection?.ToString(System.Globalization.CultureInfo.InvariantCulture));
        parts.Add($"legs={Legs.ToString().ToLowerInvariant()}");
        return string.Join(", ", parts);

        void Add(string name, string? value)
        {
            if (value is not null)
            {
                parts.Add($"{name}={value}");
            }
        }
    }

    /// <summary>Before the connection is registered (only its route is known): no, or maybe.</summary>
    public CaptureMatch MatchRoute(string route, string family) =>
        Route is null || Route == route || Route == family ? CaptureMatch.Later : CaptureMatch.No;

    public CaptureMatch Match(ProxiedConnection connection)
    {
        var result = CaptureMatch.Yes;
        if (Route is not null && Route != connection.Route && Route != connection.Served.Root.Name)
        {
            return CaptureMatch.No;
        }

        if (Connection is { } id && id != connection.Id)
        {
            return CaptureMatch.No;
        }

        if (Source is { } source && !source.Contains(Unmap(connection.Source.Address)) && !source.Contains(Unmap(connection.Client.Address)))
        {
            return CaptureMatch.No;
        }

        if (Pid is { } pid && ProcessId(connection) != pid)
        {
            return CaptureMatch.No;
        }

        if (Process is { } process && ProcessText(connection) is var text && (text is null || !text.Contains(process, StringComparison.OrdinalIgnoreCase)))
        {
            return CaptureMatch.No;
        }

        if (ClientId is { } clientId)
        {
            var known = connection.Assignment?.Client.KafkaClientId ?? connection.Kafka?.ClientId;
            if (known is not null)
            {
                return known == clientId ? result : CaptureMatch.No;
            }

            // A Kafka client says who it is in its first request; until then (or until it leaves) wait.
            return connection.RouteModel.Kafka is null || connection.IsClosed ? CaptureMatch.No : CaptureMatch.Later;
        }

        return result;
    }

    private static System.Net.IPAddress Unmap(System.Net.IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    /// <summary>The client process's id where the proxy knows it (an intercepted connection, or assignment by process).</summary>
    internal static int? ProcessId(ProxiedConnection connection)
    {
        if (connection.Intercepted?.Pid is { } pid)
        {
            return pid;
        }

        // Assignment by process keys clients as pid:N@start.
        var key = connection.Assignment?.Client.Key;
        if (key is not null && key.StartsWith("pid:", StringComparison.Ordinal))
        {
            int at = key.IndexOf('@', StringComparison.Ordinal);
            if (int.TryParse(key.AsSpan(4, (at < 0 ? key.Length : at) - 4), System.Globalization.CultureInfo.InvariantCulture, out int parsed))
            {
                return parsed;
            }
        }

        return null;
    }

    private static string? ProcessText(ProxiedConnection connection) =>
        connection.Intercepted?.CommandLine
        ?? (connection.Assignment?.Client.Key.StartsWith("pid:", StringComparison.Ordinal) == true ? connection.Assignment.Client.Display : null);
}
