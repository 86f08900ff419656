using System.Collections.Concurrent;
using BindProxy.Configuration;
using BindProxy.Forwarding;
using BindProxy.Hosting;
using BindProxy.Interception;
using BindProxy.Kafka.Rewriting;
using Microsoft.Extensions.Logging;

namespace BindProxy.Kafka.Brokers;

/// <summary>One <see cref="BrokerDirectory"/> per Kafka bootstrap route.</summary>
internal sealed class BrokerDirectories(ListenerHost listeners, RouteTable routes, InterceptedPorts intercepted, ILogger<BrokerDirectory> logger)
{
    private readonly ConcurrentDictionary<string, BrokerDirectory> _directories = new(StringComparer.Ordinal);

    public IReadOnlyDictionary<string, BrokerDirectory> All => _directories;

    /// <summary>The directory of <paramref name="route"/>'s cluster (a broker route shares its bootstrap's).</summary>
    public BrokerDirectory For(RouteModel route)
    {
        var root = route.Root;
        return _directories.GetOrAdd(root.Name, _ => new BrokerDirectory(root, listeners, routes, logger));
    }

    /// <summary>
    /// The broker address mapper for one client connection of <paramref name="route"/>, which the
    /// client reached at <paramref name="clientReachedUsAt"/>. An intercepting route leaves every
    /// address as the cluster advertises it and intercepts its port instead.
    /// </summary>
    public IBrokerAddressMapper MapperFor(RouteModel route, System.Net.IPEndPoint clientReachedUsAt) =>
        route.Intercept is not null ? new InterceptedBrokerMapper(intercepted, route.Root.Name) : For(route).MapperFor(clientReachedUsAt);

    /// <summary>Forgets a removed route's brokers (its listeners are closed by the caller).</summary>
    public void Remove(string route) => _directories.TryRemove(route, out _);
}
