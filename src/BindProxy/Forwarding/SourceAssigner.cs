using System.Net;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Kafka;
using BindProxy.Transport;

namespace BindProxy.Forwarding;

/// <summary>Works out who a connection belongs to and leases that client's source address.</summary>
internal sealed class SourceAssigner(AssignmentRegistry registry, ProcessLookup processes)
{
    /// <summary>
    /// The lease of the client's address, or null under round-robin. <c>Refused</c> is true when the
    /// pool is exhausted and the route refuses new clients.
    /// </summary>
    public async Task<(AssignmentLease? Lease, bool Refused)> AssignAsync(RouteModel route, PipeSocket client, CancellationToken cancellationToken)
    {
        var settings = route.Assignment;
        if (settings.Policy == AssignPolicy.RoundRobin)
        {
            return (null, false);
        }

        var root = route.Root.Name;
        IPAddress? pinned = null;
        ClientIdentity identity;
        switch (settings.Policy)
        {
            case AssignPolicy.Process when processes.Find(client.RemoteEndPoint, client.LocalEndPoint) is { } process:
                identity = new ClientIdentity(process.Key, process.ToString());
                break;
            case AssignPolicy.KafkaClientId when await KafkaClientIdReader.PeekAsync(client, route.ConnectTimeout, cancellationToken).ConfigureAwait(false) is { } clientId:
                identity = ClientIdentity.ForKafkaClientId(clientId);
                settings.ClientIds.TryGetValue(clientId, out pinned);
                if (!registry.IsKnown(root, identity) && processes.Find(client.RemoteEndPoint, client.LocalEndPoint) is { } owner)
                {
                    identity = identity with { Display = $"{identity.Display} ({owner})" };
                }

                break;
            default:
                // client-address, and the fallback when a process or client.id cannot be told.
                identity = ClientIdentity.ForAddress(client.RemoteEndPoint.Address);
                break;
        }

        var lease = registry.Acquire(root, identity, route.Sources.Addresses, pinned, settings.ClientIds.Values, settings.WhenExhausted, settings.IdleTimeout);
        return (lease, lease is null);
    }
}
