using System.Collections.Concurrent;

namespace BindProxy.Faults;

/// <summary>
/// Every route's faults, by route name (a Kafka broker listener's is its own, <c>kafka/broker-1</c>).
/// A route has an entry once a toxic was added to it or it was disabled; a connection of a route
/// without one pays nothing.
/// </summary>
internal sealed class FaultTable
{
    private readonly ConcurrentDictionary<string, RouteFaults> _routes = new(StringComparer.Ordinal);

    /// <summary>The route's faults, made on first use.</summary>
    public RouteFaults For(string route) => _routes.GetOrAdd(route, name => new RouteFaults(name));

    /// <summary>The route's faults if it has an entry.</summary>
    public RouteFaults? Find(string route) => _routes.TryGetValue(route, out var faults) ? faults : null;

    /// <summary>True when the route has a toxic now.</summary>
    public bool HasToxics(string route) => Find(route) is { HasToxics: true };

    public IReadOnlyCollection<RouteFaults> All => [.. _routes.Values];

    /// <summary>Forgets a route that is gone.</summary>
    public void Forget(string route)
    {
        if (_routes.TryRemove(route, out var faults))
        {
            faults.Dispose();
        }
    }
}
