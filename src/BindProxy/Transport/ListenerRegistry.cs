using System.Collections.Concurrent;
using System.Net;
using BindProxy.Addressing;
using BindProxy.Configuration;
using Microsoft.AspNetCore.Connections;

namespace BindProxy.Transport;

/// <summary>
/// Every proxy listener bound right now (actual ports, also for port 0), by the route it serves.
/// A route's listeners, or its whole family's, can be closed together. Each is also kept in
/// <see cref="OwnListeners"/>, so the connector never connects to one.
/// </summary>
/// <param name="own">The proxy's own listeners; a set of its own when absent (a registry used on its own).</param>
internal sealed class ListenerRegistry(OwnListeners? own = null)
{
    private readonly OwnListeners _own = own ?? new OwnListeners();

    private readonly ConcurrentDictionary<(ServedRoute Route, IPEndPoint Address), IConnectionListener> _bound = new();

    public void Add(RouteEndPoint endpoint, IConnectionListener listener)
    {
        _bound[(endpoint.Route, endpoint.Address)] = listener;
        _own.Add(endpoint.Address, $"route {endpoint.Route.Name}");
    }

    public void Remove(RouteEndPoint endpoint)
    {
        if (_bound.TryRemove((endpoint.Route, endpoint.Address), out _))
        {
            _own.Remove(endpoint.Address);
        }
    }

    /// <summary>The endpoints <paramref name="route"/> listens on.</summary>
    public IReadOnlyList<IPEndPoint> For(ServedRoute route) =>
        [.. _bound.Keys.Where(k => k.Route == route).Select(k => k.Address).OrderBy(a => a.ToString(), StringComparer.Ordinal)];

    /// <summary>The endpoints the route named <paramref name="name"/> listens on (as logs and the admin API name it).</summary>
    public IReadOnlyList<IPEndPoint> For(string name) =>
        [.. _bound.Keys.Where(k => k.Route.Name == name).Select(k => k.Address).OrderBy(a => a.ToString(), StringComparer.Ordinal)];

    /// <summary>
    /// Stops accepting on every listener of <paramref name="route"/>; the accept loops see their
    /// listener end. Established connections stay. Returns how many were closed.
    /// </summary>
    public Task<int> UnbindAsync(ServedRoute route) => UnbindAsync(k => k.Route == route);

    /// <summary>Stops accepting on every listener of <paramref name="root"/>'s family: the route and the listeners it opened.</summary>
    public Task<int> UnbindFamilyAsync(ServedRoute root) => UnbindAsync(k => k.Route.Root == root.Root);

    /// <summary>Stops accepting on every listener (the proxy is stopping).</summary>
    public Task<int> UnbindAllAsync() => UnbindAsync(_ => true);

    private async Task<int> UnbindAsync(Func<(ServedRoute Route, IPEndPoint Address), bool> which)
    {
        int count = 0;
        foreach (var key in _bound.Keys.Where(which))
        {
            if (_bound.TryRemove(key, out var listener))
            {
                _own.Remove(key.Address);
                await listener.UnbindAsync().ConfigureAwait(false);
                count++;
            }
        }

        return count;
    }
}
