using System.Collections.Concurrent;
using System.Net;
using BindProxy.Addressing;
using Microsoft.AspNetCore.Connections;

namespace BindProxy.Transport;

/// <summary>
/// Every proxy listener bound right now (actual ports, also for port 0), whether Kestrel opened it
/// at startup or it was opened later; a route's listeners can be closed by name. Each is also
/// kept in <see cref="OwnListeners"/>, so the connector never connects to one.
/// </summary>
/// <param name="own">The proxy's own listeners; a set of its own when absent (a registry used on its own).</param>
internal sealed class ListenerRegistry(OwnListeners? own = null)
{
    private readonly OwnListeners _own = own ?? new OwnListeners();

    private readonly ConcurrentDictionary<(string Route, IPEndPoint Address), IConnectionListener?> _bound = new();

    /// <param name="listener">The proxy's own listener; null for an HTTP endpoint that Kestrel owns (it cannot be closed alone).</param>
    public void Add(RouteEndPoint endpoint, IConnectionListener? listener = null)
    {
        _bound[(endpoint.Route, endpoint.Address)] = listener;
        _own.Add(endpoint.Address, $"route {endpoint.Route}");
    }

    public void Remove(RouteEndPoint endpoint)
    {
        if (_bound.TryRemove((endpoint.Route, endpoint.Address), out _))
        {
            _own.Remove(endpoint.Address);
        }
    }

    public IReadOnlyList<IPEndPoint> For(string route) =>
        [.. _bound.Keys.Where(k => k.Route == route).Select(k => k.Address).OrderBy(a => a.ToString(), StringComparer.Ordinal)];

    /// <summary>
    /// Stops accepting on every listener of <paramref name="route"/> and of its Kafka brokers; the
    /// accept loops (Kestrel's or the proxy's) see the listener end. Established connections stay.
    /// </summary>
    public async Task<int> UnbindRouteAsync(string route)
    {
        int count = 0;
        foreach (var key in _bound.Keys.Where(k => BelongsTo(k.Route, route)))
        {
            if (_bound.TryGetValue(key, out var owned) && owned is not null && _bound.TryRemove(key, out var listener) && listener is not null)
            {
                _own.Remove(key.Address);
                await listener.UnbindAsync().ConfigureAwait(false);
                count++;
            }
        }

        return count;
    }

    /// <summary>True for the route itself and for its Kafka broker listeners (<c>route/broker-N</c>).</summary>
    public static bool BelongsTo(string candidate, string route) =>
        candidate == route || candidate.StartsWith(route + "/broker-", StringComparison.Ordinal);
}
