using System.Diagnostics;
using System.Net;
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

    private IConnectionLegs _legs = legs;

    /// <summary>
    /// The client and upstream sockets, on whichever forwarding path moves the bytes now: a relay
    /// connection that moves to the pipe path switches them once (<see cref="SwitchLegs"/>).
    /// </summary>
    public IConnectionLegs Legs => Volatile.Read(ref _legs);

    /// <summary>
    /// Makes <paramref name="to"/> the connection's legs in place of <paramref name="from"/> (any
    /// thread); false when they were not <paramref name="from"/>. An <see cref="Abort"/> that met
    /// the old legs after they let go of the sockets has set <see cref="ProxyReason"/> first, so
    /// the caller aborts the new ones when it is set after the switch.
    /// </summary>
    internal bool SwitchLegs(IConnectionLegs from, IConnectionLegs to) => Interlocked.CompareExchange(ref _legs, to, from) == from;

    public long StartedTimestamp { get; } = Stopwatch.GetTimestamp();

    public IPEndPoint Client => Legs.Client;

    public IPEndPoint Listener => Legs.Listener;

    public IPEndPoint Source => Legs.Source;

    public IPEndPoint Upstream => Legs.Upstream;

    /// <summary>The client's sticky source assignment, under a per-client policy.</summary>
    public Assignment? Assignment => Lease?.Assignment;

    /// <summary>This connection's hold on <see cref="Assignment"/>; released when it closes.</summary>
    public AssignmentLease? Lease { get; set; }

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

    /// <summary>The registry has let go of the connection.</summary>
    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    internal void MarkClosed()
    {
        // A full fence between the two, as in WhenClosed: one side or the other completes the signal.
        Interlocked.Exchange(ref _closed, 1);
        Volatile.Read(ref _whenClosed)?.TrySetResult();
    }

    /// <summary>The stall watchdog's view of this connection (the sweeper's thread only).</summary>
    internal StallWatch Watch;

    /// <summary>Set while the watchdog finds bytes waiting in one direction with no progress though the other side could take them.</summary>
    public bool IsStalled => Volatile.Read(ref _stalled) != 0;

    private int _stalled;

    internal void MarkStalled(bool stalled) => Volatile.Write(ref _stalled, stalled ? 1 : 0);

    /// <summary>Milliseconds since a byte last moved either way, as seen by successive calls (one caller: the sweeper).</summary>
    internal long IdleMilliseconds(long now)
    {
        // Received and sent: while a slow reader drains what the proxy holds for it, nothing new
        // is read, but bytes still move. Once both sides have ended, what moves is the kernel's
        // send queues draining.
        long total = Legs.BytesReceived + Legs.BytesToUpstream + Legs.BytesToClient - (Legs.IsFlushing ? Legs.KernelQueued() : 0);
        if (total != _lastTotal)
        {
            _lastTotal = total;
            _lastChangeTicks = now;
        }

        return now - _lastChangeTicks;
    }
}
