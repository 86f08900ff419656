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

    /// <summary>
    /// Told after a route's toxic list changed (added, changed, removed, from the API or the file),
    /// with the route's faults, on the thread that changed it and in the order of the changes. A
    /// listener does little and does not throw: the change is made already.
    /// </summary>
    public event Action<RouteFaults>? Changed;

    /// <summary>The route's faults, made on first use.</summary>
    public RouteFaults For(string route) => _routes.GetOrAdd(route, name => new RouteFaults(name, faults => Changed?.Invoke(faults)));

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
