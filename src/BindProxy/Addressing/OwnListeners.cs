using System.Collections.Frozen;
using System.Net;
using System.Net.Sockets;

namespace BindProxy.Addressing;

/// <summary>
/// The endpoints this proxy listens on right now (route, Kafka broker and admin listeners), so an
/// upstream connection is never made to one of them: a route that reaches its own listener would
/// connect to itself once per connection it accepted, without end.
/// </summary>
internal sealed class OwnListeners
{
    private readonly Lock _lock = new();
    private readonly Dictionary<IPEndPoint, string> _endpoints = [];

    // Read on every upstream connect: a lookup by port, without a lock or an allocation. Most
    // destinations share no port with a listener and are answered by the first lookup.
    private FrozenDictionary<int, (IPAddress Address, string Owner)[]> _byPort = FrozenDictionary<int, (IPAddress, string)[]>.Empty;

    /// <param name="owner">What listens there, for the log (a route name, "the admin endpoint").</param>
    public void Add(IPEndPoint endpoint, string owner)
    {
        lock (_lock)
        {
            _endpoints[endpoint] = owner;
            Publish();
        }
    }

    public void Remove(IPEndPoint endpoint)
    {
        lock (_lock)
        {
            if (_endpoints.Remove(endpoint))
            {
                Publish();
            }
        }
    }

    /// <summary>True when a connection to <paramref name="destination"/> would reach one of the proxy's own listeners.</summary>
    public bool Reaches(IPEndPoint destination, out string owner)
    {
        owner = "";
        if (!Volatile.Read(ref _byPort).TryGetValue(destination.Port, out var listeners))
        {
            return false;
        }

        foreach (var (address, what) in listeners)
        {
            if (Covers(address, destination.Address, IsAssigned))
            {
                owner = what;
                return true;
            }
        }

        return false;
    }

    private void Publish() =>
        Volatile.Write(ref _byPort, _endpoints.GroupBy(e => e.Key.Port)
            .ToFrozenDictionary(g => g.Key, g => g.Select(e => (e.Key.Address, e.Value)).ToArray()));

    /// <summary>
    /// True when a socket listening on <paramref name="listener"/> accepts connections made to
    /// <paramref name="destination"/> on the same port: the same address, or a wildcard listener of
    /// the destination's family and a destination that is this machine (loopback, a wildcard, which
    /// connects locally, or an address assigned here). IPv6 listeners are never dual-stack here.
    /// </summary>
    public static bool Covers(IPAddress listener, IPAddress destination, Func<IPAddress, bool> isAssigned)
    {
        if (destination.IsIPv4MappedToIPv6)
        {
            destination = destination.MapToIPv4();
        }

        if (listener.Equals(destination))
        {
            return true;
        }

        if (listener.AddressFamily != destination.AddressFamily)
        {
            return false;
        }

        bool listenerAny = IsAny(listener);
        bool destinationAny = IsAny(destination);
        if (destinationAny)
        {
            // Connecting to 0.0.0.0 (or ::) reaches this machine's loopback.
            return listenerAny || IPAddress.IsLoopback(listener);
        }

        return listenerAny && (IPAddress.IsLoopback(destination) || isAssigned(destination));
    }

    public static bool IsAny(IPAddress address) => address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any);

    /// <summary>An address is this machine's when a socket can be bound to it.</summary>
    public static bool IsAssigned(IPAddress address)
    {
        try
        {
            using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(address, 0));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
