using System.Collections.Concurrent;
using System.Net;

namespace BindProxy.Transport;

/// <summary>The endpoints proxy listeners are bound to right now (actual ports, also for port 0).</summary>
internal sealed class ListenerRegistry
{
    private readonly ConcurrentDictionary<(string Route, IPEndPoint Address), byte> _bound = new();

    public void Add(RouteEndPoint endpoint) => _bound[(endpoint.Route, endpoint.Address)] = 0;

    public void Remove(RouteEndPoint endpoint) => _bound.TryRemove((endpoint.Route, endpoint.Address), out _);

    public IReadOnlyList<IPEndPoint> For(string route) =>
        [.. _bound.Keys.Where(k => k.Route == route).Select(k => k.Address).OrderBy(a => a.ToString(), StringComparer.Ordinal)];
}
