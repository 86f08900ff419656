using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using BindProxy.Configuration;
using BindProxy.Transport;

namespace BindProxy.Forwarding;

/// <summary>Every live proxied connection; read by the drain, the sweeper, tests and the admin API.</summary>
internal sealed class ConnectionRegistry : IDrainSource
{
    private readonly ConcurrentDictionary<long, ProxiedConnection> _connections = new();
    private readonly ConcurrentDictionary<string, StrongBox<int>> _perRoute = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Route, System.Net.IPAddress Client), int> _perClient = [];
    private long _nextId;

    /// <summary>
    /// Counts a new connection against its route's limit (connecting ones included); false when the
    /// route is full. Every true must be paired with <see cref="Leave"/>.
    /// </summary>
    public bool TryEnter(string route, int? max)
    {
        var count = _perRoute.GetOrAdd(route, _ => new StrongBox<int>());
        if (Interlocked.Increment(ref count.Value) <= (max ?? int.MaxValue))
        {
            return true;
        }

        Interlocked.Decrement(ref count.Value);
        return false;
    }

    public void Leave(string route)
    {
        if (_perRoute.TryGetValue(route, out var count))
        {
            Interlocked.Decrement(ref count.Value);
        }
    }

    /// <summary>
    /// Counts a connection against the per-client-address limit of a route (a Kafka bootstrap and
    /// its brokers share one count); false when that client is at the limit.
    /// </summary>
    public bool TryEnterClient(string route, System.Net.IPAddress client, int? max)
    {
        if (max is null)
        {
            return true;
        }

        lock (_perClient)
        {
            int count = _perClient.GetValueOrDefault((route, client));
            if (count >= max)
            {
                return false;
            }

            _perClient[(route, client)] = count + 1;
            return true;
        }
    }

    public void LeaveClient(string route, System.Net.IPAddress client)
    {
        lock (_perClient)
        {
            if (_perClient.TryGetValue((route, client), out int count))
            {
                if (count <= 1)
                {
                    _perClient.Remove((route, client));
                }
                else
                {
                    _perClient[(route, client)] = count - 1;
                }
            }
        }
    }

    /// <summary>Connections of <paramref name="route"/>, connecting ones included.</summary>
    public int CountOf(string route) => _perRoute.TryGetValue(route, out var count) ? Volatile.Read(ref count.Value) : 0;

    public int Count => _connections.Count;

    public IReadOnlyCollection<ProxiedConnection> Snapshot() => [.. _connections.Values];

    IEnumerable<IDrainable> IDrainSource.Open() => _connections.Values;

    /// <param name="served">The route whose listener the connection came in on.</param>
    /// <param name="route">The definition it is served with (<paramref name="served"/>'s when it arrived).</param>
    public ProxiedConnection Add(ServedRoute served, RouteModel route, IConnectionLegs legs)
    {
        var connection = new ProxiedConnection(Interlocked.Increment(ref _nextId), served, route, legs);
        _connections[connection.Id] = connection;
        return connection;
    }

    /// <summary>Lets go of a connection that has closed; whoever waits for it (a drain) hears it now.</summary>
    public void Remove(ProxiedConnection connection)
    {
        if (_connections.TryRemove(connection.Id, out _))
        {
            connection.MarkClosed();
        }
    }
}
