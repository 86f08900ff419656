using System.Net;
using System.Net.Sockets;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Forwarding;
using BindProxy.Hosting;
using BindProxy.Kafka.Rewriting;
using Microsoft.Extensions.Logging;

namespace BindProxy.Kafka.Brokers;

/// <summary>A broker of one Kafka route: its real address and the proxy port clients are told.</summary>
internal sealed record BrokerEntry(int NodeId, string Host, int Port, int ProxyPort, RouteModel Route);

/// <summary>
/// The brokers of one Kafka route, by node id. The first time a node id shows up in a response,
/// it gets a proxy listener of its own (the next port of <c>BrokerPorts</c>, or an automatic one)
/// that forwards to the broker's real address from the route's source addresses. The mapping is
/// stable for the proxy's lifetime; a broker that moves keeps its proxy port.
/// </summary>
internal sealed partial class BrokerDirectory
{
    private readonly RouteModel _route;
    private readonly ListenerHost _listeners;
    private readonly RouteTable _routes;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly Dictionary<int, BrokerEntry> _brokers = [];
    private readonly IPAddress[] _listenAddresses;
    private int _nextPortIndex;

    public BrokerDirectory(RouteModel route, ListenerHost listeners, RouteTable routes, ILogger logger)
    {
        _route = route;
        _listeners = listeners;
        _routes = routes;
        _logger = logger;
        _listenAddresses = [.. route.Listen.Endpoints.Select(e => e.Address).Distinct()];
    }

    public IReadOnlyList<BrokerEntry> Brokers
    {
        get
        {
            lock (_lock)
            {
                return [.. _brokers.Values.OrderBy(b => b.NodeId)];
            }
        }
    }

    /// <summary>A mapper for one client connection: it is told the host the client reached the proxy at.</summary>
    public IBrokerAddressMapper MapperFor(IPEndPoint clientReachedUsAt) =>
        new Mapper(this, _route.Kafka?.AdvertisedHost ?? HostOf(clientReachedUsAt.Address));

    private static string HostOf(IPAddress address) =>
        (address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address).ToString();

    /// <summary>The proxy port for <paramref name="nodeId"/>, opening its listener on first sight.</summary>
    public int PortFor(int nodeId, string host, int port)
    {
        if (_route.Kafka?.AllowedBrokers is { } allowed && !allowed.Allows(host))
        {
            throw new InvalidOperationException(
                $"route '{_route.Name}': broker {nodeId} advertises {host}:{port}, which is not in AllowedBrokers ({allowed}); the proxy connects nowhere else");
        }

        lock (_lock)
        {
            if (_brokers.TryGetValue(nodeId, out var known))
            {
                if (known.Host != host || known.Port != port)
                {
                    // The broker moved: keep its proxy port, forward to the new address from now on.
                    var moved = known with { Host = host, Port = port, Route = BrokerRoute(nodeId, known.ProxyPort, host, port) };
                    _brokers[nodeId] = moved;
                    _routes.AddDynamic(moved.Route);
                    Log.BrokerMoved(_logger, _route.Name, nodeId, $"{known.Host}:{known.Port}", $"{host}:{port}", known.ProxyPort);
                }

                return known.ProxyPort;
            }

            int proxyPort = Listen(nodeId, host, port, out var route);
            _brokers[nodeId] = new BrokerEntry(nodeId, host, port, proxyPort, route);
            return proxyPort;
        }
    }

    private int Listen(int nodeId, string host, int port, out RouteModel route)
    {
        int wanted = 0;
        if (_route.Kafka?.BrokerPorts is { } range)
        {
            wanted = range.First + _nextPortIndex;
            if (wanted > range.Last)
            {
                throw new InvalidOperationException(
                    $"route '{_route.Name}': broker {nodeId} ({host}:{port}) needs a proxy port, but all of BrokerPorts {range.First}-{range.Last} are taken; widen the range");
            }

            _nextPortIndex++;
        }

        // Bind the first listen address (port 0 picks one), then the others on the same port.
        route = BrokerRoute(nodeId, wanted, host, port);
        int bound = wanted;
        foreach (var address in _listenAddresses)
        {
            // Binding is synchronous underneath; waiting here keeps the port known before the
            // rewritten response that names it can reach the client.
            bound = _listeners.BindAsync(route.Name, new IPEndPoint(address, bound)).GetAwaiter().GetResult().Port;
        }

        route = BrokerRoute(nodeId, bound, host, port);
        _routes.AddDynamic(route);
        Log.BrokerListening(_logger, _route.Name, nodeId, $"{host}:{port}", string.Join(", ", _listenAddresses.Select(a => new IPEndPoint(a, bound))));
        return bound;
    }

    private RouteModel BrokerRoute(int nodeId, int proxyPort, string host, int port)
    {
        var listenText = string.Join(",", _listenAddresses.Select(a => new IPEndPoint(a, proxyPort).ToString()));
        if (!EndpointSpec.TryParse(listenText, allowPortZero: true, out var listen, out var error) ||
            !UpstreamSpec.TryParse(host.Contains(':', StringComparison.Ordinal) ? $"[{host}]:{port}" : $"{host}:{port}", out var upstream, out error))
        {
            throw new InvalidOperationException($"route '{_route.Name}': broker {nodeId} advertises {host}:{port}, which is not usable: {error}");
        }

        return _route.ForBroker(nodeId, listen, upstream);
    }

    private sealed class Mapper(BrokerDirectory directory, string advertisedHost) : IBrokerAddressMapper
    {
        public (string Host, int Port) Map(int nodeId, string host, int port) => (advertisedHost, directory.PortFor(nodeId, host, port));
    }

    private static partial class Log
    {
        [LoggerMessage(400, LogLevel.Information, "Route {Route}: broker {NodeId} at {Broker} is reached through {Listen}")]
        public static partial void BrokerListening(ILogger logger, string route, int nodeId, string broker, string listen);

        [LoggerMessage(401, LogLevel.Information, "Route {Route}: broker {NodeId} moved from {Old} to {New}; it keeps proxy port {Port}")]
        public static partial void BrokerMoved(ILogger logger, string route, int nodeId, string old, string @new, int port);
    }
}
