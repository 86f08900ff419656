using System.Net;
using BindProxy.Addressing;

namespace BindProxy.Forwarding;

/// <summary>One client's source address on one route (a Kafka bootstrap and its brokers count as one).</summary>
internal sealed class Assignment(string route, ClientIdentity client, IPAddress address, bool shared)
{
    private int _active;
    private long _lastUsedTicks = Environment.TickCount64;

    public string Route { get; } = route;

    public ClientIdentity Client { get; } = client;

    public IPAddress Address { get; } = address;

    /// <summary>True when the pool was exhausted and this client shares its address with another.</summary>
    public bool Shared { get; } = shared;

    public DateTimeOffset Since { get; } = DateTimeOffset.UtcNow;

    public int ActiveConnections => Volatile.Read(ref _active);

    public long TotalConnections { get; private set; }

    internal long IdleSinceTicks => Volatile.Read(ref _lastUsedTicks);

    internal void Enter()
    {
        Interlocked.Increment(ref _active);
        TotalConnections++;
        Volatile.Write(ref _lastUsedTicks, Environment.TickCount64);
    }

    internal void Leave()
    {
        Interlocked.Decrement(ref _active);
        Volatile.Write(ref _lastUsedTicks, Environment.TickCount64);
    }
}
