using System.Net;
using BindProxy.Addressing;
using BindProxy.Wireshark;

namespace BindProxy.Forwarding;

/// <summary>
/// Sticky client → source address assignments, per route, in memory. A new client gets the next
/// address of the pool that no other client holds; a known client gets its address back, for the
/// bootstrap and every broker connection alike, as long as the configuration still gives it that
/// address. When a reload has moved it (a new pool, a new fixed address), its new connections get
/// a new assignment while its open ones keep the old address until they close. Entries with no
/// connection for the idle timeout are forgotten.
/// </summary>
internal sealed partial class AssignmentRegistry(ILogger<AssignmentRegistry> logger)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<(string Route, string Key), Assignment> _byClient = [];
    private readonly Dictionary<(string Route, IPAddress Address), int> _clientsPerAddress = [];
    private readonly Dictionary<string, long> _nextIndex = new(StringComparer.Ordinal);
    private readonly HashSet<string> _exhaustedLogged = new(StringComparer.Ordinal);

    // Assignments the configuration moved their client away from, kept (and their address
    // counted as taken) until the last of their connections closes.
    private readonly List<Assignment> _moved = [];

    /// <summary>Every assignment in use: one per client, and the old ones of moved clients that still have connections.</summary>
    public IReadOnlyList<Assignment> Snapshot()
    {
        lock (_lock)
        {
            return [.. _byClient.Values.Concat(_moved.Where(a => a.ActiveConnections > 0)).OrderBy(a => a.Route, StringComparer.Ordinal).ThenBy(a => a.Since)];
        }
    }

    /// <summary>The current assignment of every client of <paramref name="route"/>, connected or idle.</summary>
    public IReadOnlyList<Assignment> Clients(string route)
    {
        lock (_lock)
        {
            return [.. _byClient.Values.Where(a => a.Route == route).OrderBy(a => a.Since)];
        }
    }

    /// <summary>
    /// Whether <paramref name="assignment"/>'s address is still one the configuration gives its
    /// client: its fixed address when it has one (<paramref name="pinned"/>), otherwise an address
    /// of <paramref name="pool"/> that is not reserved for another client.
    /// </summary>
    public static bool Fits(Assignment assignment, AddressSet pool, IPAddress? pinned, IEnumerable<IPAddress> reserved) =>
        pinned is not null
            ? assignment.Address.Equals(pinned)
            : pool.Contains(assignment.Address) && !reserved.Contains(assignment.Address);

    /// <summary>
    /// The lease of <paramref name="client"/>'s address on <paramref name="route"/>, assigning one if
    /// the client is new; null when the pool is exhausted and the route refuses new clients.
    /// </summary>
    /// <param name="pinned">An address configured for this client (<c>ClientIds</c>), if any.</param>
    /// <param name="reserved">Addresses pinned to other clients; never handed to a new client.</param>
    public AssignmentLease? Acquire(string route, ClientIdentity client, AddressSet pool, IPAddress? pinned, IEnumerable<IPAddress> reserved, ExhaustedPolicy whenExhausted, TimeSpan idleTimeout)
    {
        Assignment? assignment;
        lock (_lock)
        {
            Expire(idleTimeout);
            Assignment? moved = null;
            if (_byClient.TryGetValue((route, client.Key), out assignment) && !Fits(assignment, pool, pinned, reserved))
            {
                // A reload gave this client another address: new connections take it from here on.
                _byClient.Remove((route, client.Key));
                Release(assignment);
                (moved, assignment) = (assignment, null);
            }

            if (assignment is null)
            {
                var picked = pinned is not null ? (pinned, false) : Pick(route, pool, reserved.ToHashSet(), whenExhausted);
                if (picked.Item1 is not { } address)
                {
                    return null;
                }

                assignment = new Assignment(route, client, address, picked.Item2);
                _byClient[(route, client.Key)] = assignment;
                _clientsPerAddress[(route, address)] = _clientsPerAddress.GetValueOrDefault((route, address)) + 1;
                var note = assignment.Shared ? " (shared: the pool is exhausted)" : "";
                if (moved is not null)
                {
                    note += $" instead of {moved.Address}, which the configuration no longer gives it" +
                        (moved.ActiveConnections > 0 ? $"; its {moved.ActiveConnections} open connection(s) keep {moved.Address} until they close" : "");
                }

                Log.Assigned(logger, route, client.Display, address, note, CaptureFilters.Wireshark(address, []));
            }

            assignment.Enter();
        }

        return new AssignmentLease(assignment);
    }

    public bool IsKnown(string route, ClientIdentity client)
    {
        lock (_lock)
        {
            return _byClient.ContainsKey((route, client.Key));
        }
    }

    private (IPAddress?, bool Shared) Pick(string route, AddressSet pool, HashSet<IPAddress> reserved, ExhaustedPolicy whenExhausted)
    {
        // Walk the pool from where the last assignment stopped, looking for an address no client holds.
        long start = _nextIndex.GetValueOrDefault(route);
        long limit = Math.Min(pool.Count, 65536);
        for (long i = 0; i < limit; i++)
        {
            long index = (start + i) % pool.Count;
            var candidate = pool[index];
            if (_clientsPerAddress.GetValueOrDefault((route, candidate)) == 0 && !reserved.Contains(candidate))
            {
                _nextIndex[route] = (index + 1) % pool.Count;
                return (candidate, false);
            }
        }

        if (_exhaustedLogged.Add(route))
        {
            Log.Exhausted(logger, route, pool.Count, whenExhausted == ExhaustedPolicy.Share ? "sharing the least-used address" : "refusing new clients");
        }

        if (whenExhausted == ExhaustedPolicy.Refuse)
        {
            return (null, false);
        }

        var leastUsed = _clientsPerAddress.Where(kv => kv.Key.Route == route && !reserved.Contains(kv.Key.Address))
            .OrderBy(kv => kv.Value).ThenBy(kv => AddressSet.ToNumber(kv.Key.Address))
            .Select(kv => kv.Key.Address).FirstOrDefault();
        return (leastUsed, leastUsed is not null);
    }

    private void Expire(TimeSpan idleTimeout)
    {
        long now = Environment.TickCount64;
        List<(string, string)>? expired = null;
        foreach (var (key, assignment) in _byClient)
        {
            if (assignment.ActiveConnections == 0 && now - assignment.IdleSinceTicks > (long)idleTimeout.TotalMilliseconds)
            {
                (expired ??= []).Add(key);
            }
        }

        foreach (var key in expired ?? [])
        {
            var assignment = _byClient[key];
            _byClient.Remove(key);
            Forget(assignment);
            Log.Expired(logger, assignment.Route, assignment.Client.Display, assignment.Address);
        }

        // A moved client's old address is free once its last connection there has closed.
        for (int i = _moved.Count - 1; i >= 0; i--)
        {
            if (_moved[i].ActiveConnections == 0)
            {
                Forget(_moved[i]);
                _moved.RemoveAt(i);
            }
        }
    }

    /// <summary>Takes a moved client's old assignment out of use: forgotten now when nothing holds it, else once its connections have closed.</summary>
    private void Release(Assignment assignment)
    {
        if (assignment.ActiveConnections == 0)
        {
            Forget(assignment);
        }
        else
        {
            _moved.Add(assignment);
        }
    }

    private void Forget(Assignment assignment)
    {
        var addressKey = (assignment.Route, assignment.Address);
        if (--_clientsPerAddress[addressKey] == 0)
        {
            _clientsPerAddress.Remove(addressKey);
            _exhaustedLogged.Remove(assignment.Route);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(950, LogLevel.Information, "{Route}: {Client} → {Address}{Shared}; Wireshark: {Filter}")]
        public static partial void Assigned(ILogger logger, string route, string client, IPAddress address, string shared, string filter);

        [LoggerMessage(951, LogLevel.Warning, "{Route}: every one of the {Count} source addresses is assigned to a client; {Fallback}")]
        public static partial void Exhausted(ILogger logger, string route, long count, string fallback);

        [LoggerMessage(952, LogLevel.Information, "{Route}: {Client} idle; {Address} released")]
        public static partial void Expired(ILogger logger, string route, string client, IPAddress address);
    }
}
