using System.Collections.Concurrent;
using System.Net;
using BindProxy.Configuration;
using BindProxy.Interception;
using BindProxy.Kafka.Rewriting;
using BindProxy.Transport;
using Microsoft.Extensions.Logging;

namespace BindProxy.Kafka.Brokers;

/// <summary>One <see cref="BrokerDirectory"/> per Kafka route family, made at its first client connection.</summary>
internal sealed class BrokerDirectories(IBrokerListeners listeners, InterceptedPorts intercepted, ILogger<BrokerDirectory> logger) : IDisposable
{
    private readonly ConcurrentDictionary<ServedRoute, BrokerDirectory> _directories = new();

    /// <summary>The directories by route name (as logs and the admin API name the routes).</summary>
    public IReadOnlyDictionary<string, BrokerDirectory> All => _directories.ToDictionary(d => d.Key.Name, d => d.Value, StringComparer.Ordinal);

    /// <summary>The directory of <paramref name="route"/>'s family (a broker listener's route shares its root's).</summary>
    public BrokerDirectory For(ServedRoute route) => _directories.GetOrAdd(route.Root, root => new BrokerDirectory(root, listeners, logger));

    /// <summary>
    /// The broker address mapper for one client connection of <paramref name="served"/>, served with
    /// <paramref name="route"/>, which the client reached at <paramref name="clientReachedUsAt"/>.
    /// An intercepting route leaves every address as the cluster advertises it and intercepts its
    /// port instead.
    /// </summary>
    public IBrokerAddressMapper MapperFor(ServedRoute served, RouteModel route, IPEndPoint clientReachedUsAt) =>
        route.Intercept is not null ? new InterceptedBrokerMapper(intercepted, route.Root.Name) : For(served).MapperFor(route, clientReachedUsAt);

    /// <summary>
    /// Tells the directory of a route whose definition changed; brokers it no longer allows (all of
    /// them when it is no longer a Kafka route) lose their listeners.
    /// </summary>
    public async Task UpdateAsync(ServedRoute root)
    {
        if (_directories.TryGetValue(root, out var directory))
        {
            await directory.UpdateAsync().ConfigureAwait(false);
            if (root.Model.Kafka is null)
            {
                _directories.TryRemove(root, out _);
            }
        }
    }

    /// <summary>
    /// Forgets a removed family's brokers (its listeners are closed with the family). Not disposed
    /// here: a client's response may still be waiting for its gate, which holds no handle anyway.
    /// </summary>
    public void Remove(ServedRoute root) => _directories.TryRemove(root, out _);

    public void Dispose()
    {
        foreach (var directory in _directories.Values)
        {
            directory.Dispose();
        }

        _directories.Clear();
    }
}
