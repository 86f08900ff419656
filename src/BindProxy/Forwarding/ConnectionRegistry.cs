using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using BindProxy.Transport;

namespace BindProxy.Forwarding;

/// <summary>A live proxied connection.</summary>
internal sealed class ProxiedConnection(long id, string route, PipeSocket client, PipeSocket upstream)
{
    public long Id { get; } = id;

    public string Route { get; } = route;

    public PipeSocket Client { get; } = client;

    public PipeSocket Upstream { get; } = upstream;

    public long StartedTimestamp { get; } = Stopwatch.GetTimestamp();

    public IPEndPoint Source => Upstream.LocalEndPoint;

    public long BytesToUpstream => Upstream.BytesSent;

    public long BytesToClient => Client.BytesSent;

    /// <summary>Bytes the proxy holds for this connection right now, both directions.</summary>
    public long BufferedBytes => (Client.BytesReceived - Upstream.BytesSent) + (Upstream.BytesReceived - Client.BytesSent);
}

/// <summary>Every live proxied connection; read by tests and the admin API.</summary>
internal sealed class ConnectionRegistry
{
    private readonly ConcurrentDictionary<long, ProxiedConnection> _connections = new();
    private long _nextId;

    public int Count => _connections.Count;

    public IReadOnlyCollection<ProxiedConnection> Snapshot() => [.. _connections.Values];

    public ProxiedConnection Add(string route, PipeSocket client, PipeSocket upstream)
    {
        var connection = new ProxiedConnection(Interlocked.Increment(ref _nextId), route, client, upstream);
        _connections[connection.Id] = connection;
        return connection;
    }

    public void Remove(ProxiedConnection connection) => _connections.TryRemove(connection.Id, out _);
}
