using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Runtime.CompilerServices;
using BindProxy.Configuration;
using BindProxy.Transport;

namespace BindProxy.Forwarding;

/// <summary>A live proxied connection.</summary>
/// <param name="served">The route whose listener it came in on (a Kafka broker listener's own route for a broker connection).</param>
/// <param name="route">The route's definition when the connection was made; it keeps it for its lifetime.</param>
internal sealed class ProxiedConnection(long id, ServedRoute served, RouteModel route, IConnectionLegs legs) : IDrainable
{
    private int _proxyReason = -1;
    private int _closed;
    private TaskCompletionSource? _whenClosed;

    // Bytes already added to the route's metric totals (see ProxyMetrics).
    internal long CountedToUpstream;
    internal long CountedToClient;

    private long _lastTotal = -1;
    private long _lastChangeTicks = Environment.TickCount64;

    public long Id { get; } = id;

    public string Route => RouteModel.Name;

    public RouteModel RouteModel { get; } = route;

    public ServedRoute Served { get; } = served;

    /// <summary>The client and upstream sockets, on whichever forwarding path moves the bytes.</summary>
    public IConnectionLegs Legs { get; } = legs;

    public long StartedTimestamp { get; } = Stopwatch.GetTimestamp();

    public IPEndPoint Client => Legs.Client;

    public IPEndPoint Listener => Legs.Listener;

    public IPEndPoint Source => Legs.Source;

    public IPEndPoint Upstream => Legs.Upstream;

    /// <summary>The client's sticky source assignment, under a per-client policy.</summary>
    public Addressing.Assignment? Assignment => Lease?.Assignment;

    /// <summary>This connection's hold on <see cref="Assignment"/>; released when it closes.</summary>
    public Addressing.AssignmentLease? Lease { get; set; }

    /// <summary>An intercepted connection's original destination and process; null for a connection made to a listener.</summary>
    public Interception.InterceptedClient? Intercepted { get; set; }

    /// <summary>The Kafka session of a Kafka route's connection (client.id and so on).</summary>
    public IKafkaSessionInfo? Kafka { get; set; }

    public long BytesToUpstream => Legs.BytesToUpstream;

    public long BytesToClient => Legs.BytesToClient;

    /// <summary>Bytes the proxy holds for this connection right now, both directions.</summary>
    public long BufferedBytes => Legs.BufferedBytes;

    /// <summary>Why the proxy itself ended the connection, if it did; the first reason given wins.</summary>
    public CloseReason? ProxyReason => Volatile.Read(ref _proxyReason) is var r and >= 0 ? (CloseReason)r : null;

    /// <summary>Resets both sides for <paramref name="reason"/>.</summary>
    public void Abort(CloseReason reason)
    {
        Interlocked.CompareExchange(ref _proxyReason, (int)reason, -1);
        Legs.Abort();
    }

    void IDrainable.Abort() => Abort(CloseReason.ProxyAborted);

    /// <summary>Nothing to ask: the proxy cannot tell a quiet moment of a byte stream; its peers end it.</summary>
    void IDrainable.RequestClose()
    {
    }

    /// <summary>Completes when the registry lets go of the connection (made only when someone waits: most never are).</summary>
    public Task WhenClosed()
    {
        var signal = Volatile.Read(ref _whenClosed);
        if (signal is null)
        {
            var made = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            signal = Interlocked.CompareExchange(ref _whenClosed, made, null) ?? made;
        }

        // A close that came before the signal existed completes it here.
        if (Volatile.Read(ref _closed) != 0)
        {
            signal.TrySetResult();
        }

        return signal.Task;
    }

    internal void MarkClosed()
    {
        // A full fence between the two, as in WhenClosed: one side or the other completes the signal.
        Interlocked.Exchange(ref _closed, 1);
        Volatile.Read(ref _whenClosed)?.TrySetResult();
    }

    /// <summary>Milliseconds since a byte last moved either way, as seen by successive calls (one caller: the sweeper).</summary>
    internal long IdleMilliseconds(long now)
    {
        // Received and sent: while a slow reader drains what the proxy holds for it, nothing new
        // is read, but bytes still move.
        long total = Legs.BytesReceived + Legs.BytesToUpstream + Legs.BytesToClient;
        if (total != _lastTotal)
        {
            _lastTotal = total;
            _lastChangeTicks = now;
        }

        return now - _lastChangeTicks;
    }
}

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
