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
                pinned = Pinned(settings, identity);
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

    /// <summary>
    /// The clients of <paramref name="route"/> holding an address its configuration no longer
    /// gives them (after a reload), each with the fixed address it has now, if any. Their next
    /// connection gets a new address; open ones keep theirs.
    /// </summary>
    public IReadOnlyList<(Assignment Assignment, IPAddress? Pinned)> Outdated(RouteModel route)
    {
        var settings = route.Assignment;
        if (settings.Policy == AssignPolicy.RoundRobin)
        {
            return [];
        }

        return [.. registry.Clients(route.Name)
            .Select(a => (Assignment: a, Pinned: Pinned(settings, a.Client)))
            .Where(x => !AssignmentRegistry.Fits(x.Assignment, route.Sources.Addresses, x.Pinned, settings.ClientIds.Values))];
    }

    /// <summary>The fixed address (<c>ClientIds</c>) of a client told by its Kafka client.id, if it has one.</summary>
    private static IPAddress? Pinned(AssignmentSettings settings, ClientIdentity client) =>
        settings.Policy == AssignPolicy.KafkaClientId && client.KafkaClientId is { } id && settings.ClientIds.TryGetValue(id, out var pinned) ? pinned : null;

    // Reading /proc blocks; keep it off the socket threads that run the forwarding path.
    private Task<ProcessInfo?> FindProcessAsync(IPEndPoint client, IPEndPoint proxy) =>
        Task.Run(() => processes.Find(client, proxy));
}
