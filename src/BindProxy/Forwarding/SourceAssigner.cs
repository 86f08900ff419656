using System.Net;
using BindProxy.Addressing;
using BindProxy.Configuration;

namespace BindProxy.Forwarding;

/// <summary>Works out who a connection belongs to and leases that client's source address.</summary>
internal sealed class SourceAssigner(AssignmentRegistry registry, ProcessLookup processes)
{
    /// <summary>
    /// The lease of the address of the client at <paramref name="client"/> (which reached the proxy
    /// at <paramref name="proxy"/>), or null under round-robin; <c>Refused</c> is true when the pool
    /// is exhausted and the route refuses new clients. <paramref name="kafkaClientId"/> is the
    /// client.id already read when the policy needs one.
    /// </summary>
    public async Task<(AssignmentLease? Lease, bool Refused)> AssignAsync(RouteModel route, IPEndPoint client, IPEndPoint proxy, string? kafkaClientId)
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
            case AssignPolicy.Process when await FindProcessAsync(client, proxy).ConfigureAwait(false) is { } process:
                identity = new ClientIdentity(process.Key, process.ToString());
                break;
            case AssignPolicy.KafkaClientId when kafkaClientId is not null:
                identity = ClientIdentity.ForKafkaClientId(kafkaClientId);
                settings.ClientIds.TryGetValue(kafkaClientId, out pinned);
                if (!registry.IsKnown(root, identity) && await FindProcessAsync(client, proxy).ConfigureAwait(false) is { } owner)
                {
                    identity = identity with { Display = $"{identity.Display} ({owner})" };
                }

                break;
            default:
                // client-address, and the fallback when a process or client.id cannot be told.
                identity = ClientIdentity.ForAddress(client.Address);
                break;
        }

        var lease = registry.Acquire(root, identity, route.Sources.Addresses, pinned, settings.ClientIds.Values, settings.WhenExhausted, settings.IdleTimeout);
        return (lease, lease is null);
    }

    // Reading /proc blocks; keep it off the socket threads that run the forwarding path.
    private Task<ProcessInfo?> FindProcessAsync(IPEndPoint client, IPEndPoint proxy) =>
        Task.Run(() => processes.Find(client, proxy));
}
