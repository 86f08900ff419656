using System.Collections.Concurrent;
using BindProxy.Configuration;
using BindProxy.Transport;

namespace BindProxy.Forwarding;

/// <summary>Every live proxied connection; read by the drain, the sweeper, tests and the admin API.</summary>
internal sealed class ConnectionRegistry : IDrainSource
{
    private readonly ConcurrentDictionary<long, ProxiedConnection> _connections = new();
    private readonly Dictionary<(ServedRoute Family, System.Net.IPAddress Client), int> _perClient = [];
    private long _nextId;

    /// <summary>
    /// Counts a connection against the per-client-address limit of a route family (a Kafka bootstrap
    /// and its brokers share one count: <paramref name="family"/> is the root); false when that
    /// client is at the limit.
    /// </summary>
    public bool TryEnterClient(ServedRoute family, System.Net.IPAddress client, int? max)
    {
        if (max is null)
        {
            return true;
        }

        lock (_perClient)
        {
            int count = _perClient.GetValueOrDefault((family, client));
            if (count >= max)
            {
                return false;
            }

            _perClient[(family, client)] = count + 1;
            return true;
        }
    }

    public void LeaveClient(ServedRoute family, System.Net.IPAddress client)
    {
        lock (_perClient)
        {
            if (_perClient.TryGetValue((family, client), out int count))
            {
                if (count <= 1)
                {
                    _perClient.Remove((family, client));
                }
                else
                {
                    _perClient[(family, client)] = count - 1;
                }
            }
        }
    }


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
