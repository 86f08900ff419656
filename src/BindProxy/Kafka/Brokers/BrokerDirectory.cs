using System.Collections.Frozen;
using System.Diagnostics.CodeAnalysis;
using System.Net;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Kafka.Rewriting;
using BindProxy.Transport;
using Microsoft.Extensions.Logging;

namespace BindProxy.Kafka.Brokers;

/// <summary>
/// The brokers of one Kafka route, by node id. The first time a node id shows up in a response,
/// it gets a proxy listener of its own (the first free port of <c>BrokerPorts</c>, or an automatic
/// one), a member of the route's family that forwards to the broker's real address from the
/// route's source addresses. The mapping is stable for the family's lifetime; a broker that moves
/// keeps its proxy port. Listeners are opened before the response that names them goes on.
/// </summary>
internal sealed partial class BrokerDirectory : IDisposable
{
    private readonly ServedRoute _root;
    private readonly IBrokerListeners _listeners;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly IPAddress[] _listenAddresses;

    // Read on every rewritten response without a lock; replaced whole under the gate.
    private FrozenDictionary<int, BrokerEntry> _brokers = FrozenDictionary<int, BrokerEntry>.Empty;

    public BrokerDirectory(ServedRoute root, IBrokerListeners listeners, ILogger logger)
    {
        _root = root;
        _listeners = listeners;
        _logger = logger;
        _listenAddresses = [.. root.Model.Listen.Endpoints.Select(e => e.Address).Distinct()];
    }

    /// <summary>The Kafka route whose brokers these are.</summary>
    public ServedRoute Root => _root;

    public IReadOnlyList<BrokerEntry> Brokers => [.. Volatile.Read(ref _brokers).Values.OrderBy(b => b.NodeId)];

    /// <summary>
    /// A mapper for one client connection, served with <paramref name="route"/> (its definition when
    /// it connected decides the host written); <paramref name="clientReachedUsAt"/> is the host used
    /// when the route sets no <c>AdvertisedHost</c>.
    /// </summary>
    public IReconcilingBrokerMapper MapperFor(RouteModel route, IPEndPoint clientReachedUsAt) =>
        new Mapper(this, route.Kafka?.AdvertisedHost ?? HostOf(clientReachedUsAt.Address));

    private static string HostOf(IPAddress address) =>
        (address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address).ToString();

    /// <summary>
    /// Makes every one of <paramref name="brokers"/> reachable through its own listener: a known
    /// broker keeps its port (one that moved forwards to its new address from now on), a new one
    /// gets a listener, bound before this returns. Null when done, or why a broker cannot be served.
    /// </summary>
    public async ValueTask<string?> ReconcileAsync(IReadOnlyCollection<AdvertisedBroker> brokers, CancellationToken cancellationToken)
    {
        var root = _root.Model;
        foreach (var broker in brokers)
        {
            if (root.Kafka?.AllowedBrokers is { } allowed && !allowed.Allows(broker.Host))
            {
                return $"route '{root.Name}': broker {broker.NodeId} advertises {broker.Host}:{broker.Port}, which is not in AllowedBrokers ({allowed}); the proxy connects nowhere else";
            }
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            foreach (var broker in brokers)
            {
                if (await ReconcileAsync(broker, cancellationToken).ConfigureAwait(false) is { } problem)
                {
                    return problem;
                }
            }

            return null;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async ValueTask<string?> ReconcileAsync(AdvertisedBroker broker, CancellationToken cancellationToken)
    {
        var (nodeId, host, port) = broker;
        if (!TryUpstream(broker, out var upstream, out var problem))
        {
            return problem;
        }

        if (_brokers.TryGetValue(nodeId, out var known))
        {
            if (known.Host != host || known.Port != port)
            {
                // The broker moved: keep its proxy port, forward to the new address from now on.
                known.Route.Update(_root.Model.ForBroker(nodeId, known.Route.Model.Listen, upstream));
                Publish(known with { Host = host, Port = port });
                Log.BrokerMoved(_logger, _root.Name, nodeId, $"{known.Host}:{known.Port}", $"{host}:{port}", known.ProxyPort);
            }

            return null;
        }

        if (!TryPickPort(broker, out int wanted, out problem))
        {
            return problem;
        }

        // A member of the family from the start, so a removal that comes while it binds closes it too.
        if (!TryListen(wanted, out var listen, out problem))
        {
            return problem;
        }

        if (_root.AddMember(_root.Model.ForBroker(nodeId, listen, upstream)) is not { } member)
        {
            return $"route '{_root.Name}' was removed";
        }

        // The first listen address picks the port (when automatic); the others take the same.
        int bound = wanted;
        foreach (var address in _listenAddresses)
        {
            var result = await _listeners.ListenAsync(member, new IPEndPoint(address, bound), cancellationToken).ConfigureAwait(false);
            if (!result.IsBound)
            {
                await _listeners.CloseAsync(member, "its listener could not be opened").ConfigureAwait(false);
                return $"route '{_root.Name}': broker {nodeId} ({host}:{port}) cannot be given a listener: {result.Error}";
            }

            bound = result.Bound.Port;
        }

        if (!TryListen(bound, out listen, out problem))
        {
            return problem;
        }

        member.Update(_root.Model.ForBroker(nodeId, listen, upstream));
        Publish(new BrokerEntry(nodeId, host, port, bound, member));
        Log.BrokerListening(_logger, _root.Name, nodeId, $"{host}:{port}", string.Join(", ", _listenAddresses.Select(a => new IPEndPoint(a, bound))));
        return null;
    }

    /// <summary>
    /// After the route's definition changed: brokers it no longer allows lose their listeners (a
    /// response that names one again closes its client), and all of them do when the route is no
    /// longer a Kafka route.
    /// </summary>
    public async Task UpdateAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            var root = _root.Model;
            foreach (var broker in Volatile.Read(ref _brokers).Values)
            {
                string? reason = root.Kafka is null ? $"route {root.Name} is a {root.Protocol} route now"
                    : root.Kafka.AllowedBrokers is { } allowed && !allowed.Allows(broker.Host) ? $"its broker {broker.Host} is not in AllowedBrokers ({allowed}) any more"
                    : null;
                if (reason is not null)
                {
                    Volatile.Write(ref _brokers, _brokers.Where(b => b.Key != broker.NodeId).ToFrozenDictionary());
                    await _listeners.CloseAsync(broker.Route, reason).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private void Publish(BrokerEntry entry) =>
        Volatile.Write(ref _brokers, _brokers.Where(b => b.Key != entry.NodeId).Append(new(entry.NodeId, entry)).ToFrozenDictionary());

    private bool TryPickPort(AdvertisedBroker broker, out int port, [NotNullWhen(false)] out string? problem)
    {
        problem = null;
        port = 0;
        if (_root.Model.Kafka?.BrokerPorts is not var (first, last))
        {
            return true;
        }

        // The first port of the range that no broker of this route holds: stable per node id, and a
        // port freed by a broker that left (or a range edited on reload) is used again.
        var taken = _brokers.Values.Select(b => b.ProxyPort).ToHashSet();
        for (int candidate = first; candidate <= last; candidate++)
        {
            if (!taken.Contains(candidate))
            {
                port = candidate;
                return true;
            }
        }

        problem = $"route '{_root.Name}': broker {broker.NodeId} ({broker.Host}:{broker.Port}) needs a proxy port, but all of BrokerPorts {first}-{last} are taken; widen the range";
        return false;
    }

    private bool TryUpstream(AdvertisedBroker broker, [NotNullWhen(true)] out UpstreamSpec? upstream, [NotNullWhen(false)] out string? problem)
    {
        var text = broker.Host.Contains(':', StringComparison.Ordinal) ? $"[{broker.Host}]:{broker.Port}" : $"{broker.Host}:{broker.Port}";
        if (UpstreamSpec.TryParse(text, out upstream, out var error))
        {
            problem = null;
            return true;
        }

        problem = $"route '{_root.Name}': broker {broker.NodeId} advertises {broker.Host}:{broker.Port}, which is not usable: {error}";
        return false;
    }

    /// <summary>The broker listener's endpoints: the route's listen addresses, on <paramref name="port"/>.</summary>
    private bool TryListen(int port, [NotNullWhen(true)] out EndpointSpec? listen, [NotNullWhen(false)] out string? problem)
    {
        var text = string.Join(",", _listenAddresses.Select(a => new IPEndPoint(a, port).ToString()));
        if (EndpointSpec.TryParse(text, allowPortZero: true, out listen, out var error))
        {
            problem = null;
            return true;
        }

        problem = $"route '{_root.Name}': listen endpoints {text}: {error}";
        return false;
    }

    /// <summary>
    /// One client connection's mapper: brokers with a listener map to the proxy's host and port;
    /// others are noted for <see cref="ReconcileAsync(CancellationToken)"/>, which the session awaits
    /// before it walks the response again. Used by one response pump at a time.
    /// </summary>
    private sealed class Mapper(BrokerDirectory directory, string advertisedHost) : IReconcilingBrokerMapper
    {
        private readonly List<AdvertisedBroker> _pending = [];

        public bool HasPending => _pending.Count > 0;

        public (string Host, int Port) Map(int nodeId, string host, int port)
        {
            if (Volatile.Read(ref directory._brokers).TryGetValue(nodeId, out var known) && known.Host == host && known.Port == port)
            {
                return (advertisedHost, known.ProxyPort);
            }

            _pending.Add(new AdvertisedBroker(nodeId, host, port));
            return (host, port);
        }

        public async ValueTask<string?> ReconcileAsync(CancellationToken cancellationToken)
        {
            var pending = _pending.Distinct().ToList();
            _pending.Clear();
            return await directory.ReconcileAsync(pending, cancellationToken).ConfigureAwait(false);
        }
    }

    public void Dispose() => _gate.Dispose();

    private static partial class Log
    {
        [LoggerMessage(400, LogLevel.Information, "Route {Route}: broker {NodeId} at {Broker} is reached through {Listen}")]
        public static partial void BrokerListening(ILogger logger, string route, int nodeId, string broker, string listen);

        [LoggerMessage(401, LogLevel.Information, "Route {Route}: broker {NodeId} moved from {Old} to {New}; it keeps proxy port {Port}")]
        public static partial void BrokerMoved(ILogger logger, string route, int nodeId, string old, string @new, int port);
    }
}
