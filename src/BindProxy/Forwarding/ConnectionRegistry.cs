using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Runtime.CompilerServices;
using BindProxy.Configuration;
using BindProxy.Transport;

namespace BindProxy.Forwarding;

/// <summary>A live proxied connection.</summary>
internal sealed class ProxiedConnection(long id, RouteModel route, PipeSocket client, PipeSocket upstream)
{
    private int _proxyReason = -1;
    private long _lastTotal = -1;
    private long _lastChangeTicks = Environment.TickCount64;

    public long Id { get; } = id;

    public string Route => RouteModel.Name;

    public RouteModel RouteModel { get; } = route;

    public PipeSocket Client { get; } = client;

    public PipeSocket Upstream { get; } = upstream;

    public long StartedTimestamp { get; } = Stopwatch.GetTimestamp();

    public IPEndPoint Source => Upstream.LocalEndPoint;

    /// <summary>The client's sticky source assignment, under a per-client policy.</summary>
    public Addressing.Assignment? Assignment { get; set; }

    /// <summary>The Kafka session of a Kafka route's connection (client.id and so on).</summary>
    public Kafka.KafkaSession? Kafka { get; set; }

    public long BytesToUpstream => Upstream.BytesSent;

    public long BytesToClient => Client.BytesSent;

    /// <summary>Bytes the proxy holds for this connection right now, both directions.</summary>
    public long BufferedBytes => (Client.BytesReceived - Upstream.BytesSent) + (Upstream.BytesReceived - Client.BytesSent);

    /// <summary>Why the proxy itself ended the connection, if it did; the first reason given wins.</summary>
    public CloseReason? ProxyReason => Volatile.Read(ref _proxyReason) is var r and >= 0 ? (CloseReason)r : null;

    /// <summary>Resets both sides for <paramref name="reason"/>.</summary>
    public void Abort(CloseReason reason)
    {
        Interlocked.CompareExchange(ref _proxyReason, (int)reason, -1);
        Client.Abort();
        Upstream.Abort();
    }

    /// <summary>Milliseconds since a byte last moved either way, as seen by successive calls (one caller: the sweeper).</summary>
    internal long IdleMilliseconds(long now)
    {
        long total = Client.BytesReceived + Upstream.BytesReceived;
        if (total != _lastTotal)
        {
            _lastTotal = total;
            _lastChangeTicks = now;
        }

        return now - _lastChangeTicks;
    }
}

/// <summary>Every live proxied connection; read by tests and the admin API.</summary>
internal sealed class ConnectionRegistry
{
    private readonly ConcurrentDictionary<long, ProxiedConnection> _connections = new();
    private readonly ConcurrentDictionary<string, StrongBox<int>> _perRoute = new(StringComparer.Ordinal);
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

    /// <summary>Connections of <paramref name="route"/>, connecting ones included.</summary>
    public int CountOf(string route) => _perRoute.TryGetValue(route, out var count) ? Volatile.Read(ref count.Value) : 0;

    public int Count => _connections.Count;

    public IReadOnlyCollection<ProxiedConnection> Snapshot() => [.. _connections.Values];

    public ProxiedConnection Add(RouteModel route, PipeSocket client, PipeSocket upstream)
    {
        var connection = new ProxiedConnection(Interlocked.Increment(ref _nextId), route, client, upstream);
        _connections[connection.Id] = connection;
        return connection;
    }

    public void Remove(ProxiedConnection connection) => _connections.TryRemove(connection.Id, out _);
}
