using System.Net;
using BindProxy.Addressing;
using BindProxy.Forwarding;
using BindProxy.Wireshark;

namespace BindProxy.Admin;

/// <summary>
/// Assignments read off the live connections: each connection's client identity (its Kafka
/// client.id once seen, otherwise its address) and the source address its upstream socket is
/// bound to. A registry that assigns sources per client can replace this behind the interface.
/// </summary>
internal sealed class LiveConnectionAssignments(ConnectionRegistry connections) : IClientAssignments
{
    public IReadOnlyList<AssignmentView> Current() =>
        [.. connections.Snapshot()
            .GroupBy(c => (Identity: Identity(c), Source: c.Source.Address))
            .Select(g =>
            {
                var ports = g.Select(c => c.Upstream.Port).Distinct().Order().ToList();
                return new AssignmentView(
                    g.Key.Identity.Name,
                    g.Key.Identity.Kind,
                    g.Key.Source.ToString(),
                    [.. g.Select(c => c.Route).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)],
                    ports,
                    g.Count(),
                    g.Sum(c => c.BytesToUpstream),
                    g.Sum(c => c.BytesToClient),
                    CaptureFilters.Wireshark(g.Key.Source, ports),
                    CaptureFilters.Tshark(g.Key.Source, ports),
                    CaptureQuery(g.Key.Identity.Kind, g.Key.Identity.Name, g.Key.Source, g.First()));
            })
            .OrderBy(a => a.Client, StringComparer.Ordinal)
            .ThenBy(a => a.Source, StringComparer.Ordinal)];

    public const string KafkaClientId = "kafka-client-id";
    public const string ClientAddress = "client-address";
    public const string Process = "process";

    /// <summary>
    /// Who the connection belongs to: the client its sticky source assignment was made for (a
    /// process or a client.id), else its Kafka client.id once seen, else its address (all local
    /// clients share 127.0.0.1).
    /// </summary>
    public static (string Name, string Kind) Identity(ProxiedConnection connection)
    {
        if (connection.Assignment?.Client is { } assigned)
        {
            if (assigned.KafkaClientId is { } assignedClientId)
            {
                return (assignedClientId, KafkaClientId);
            }

            if (assigned.Key.StartsWith("pid:", StringComparison.Ordinal))
            {
                return (assigned.Display, Process);
            }
        }

        return connection.Kafka?.ClientId is { Length: > 0 } clientId
            ? (clientId, KafkaClientId)
            : (Unmapped(connection.Client.Address).ToString(), ClientAddress);
    }

    /// <summary>
    /// The <c>/api/capture</c> query for one client → source pair: a Kafka client by its client.id,
    /// a process by its pid, and a client known only by its address by the source address it leaves
    /// from (local clients all come from 127.0.0.1, so their address would pick them all).
    /// </summary>
    internal static string CaptureQuery(string kind, string name, IPAddress source, ProxiedConnection any) =>
        kind switch
        {
            KafkaClientId => $"client={Uri.EscapeDataString(name)}",
            Process when CaptureSelector.ProcessId(any) is { } pid => FormattableString.Invariant($"pid={pid}"),
            _ => $"source={Uri.EscapeDataString(Unmapped(source).ToString())}",
        };

    private static IPAddress Unmapped(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}
