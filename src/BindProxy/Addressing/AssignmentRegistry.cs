using System.Net;

namespace BindProxy.Addressing;

/// <summary>
/// Sticky client → source address assignments, per route, in memory. A new client gets the next
/// address of the pool that no other client holds; a known client gets its address back, for the
/// bootstrap and every broker connection alike. Entries with no connection for the idle timeout
/// are forgotten. The admin API reads the same registry.
/// </summary>
internal sealed partial class AssignmentRegistry(ILogger<AssignmentRegistry> logger)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<(string Route, string Key), Assignment> _byClient = [];
    private readonly Dictionary<(string Route, IPAddress Address), int> _clientsPerAddress = [];
    private readonly Dictionary<string, long> _nextIndex = new(StringComparer.Ordinal);
    private readonly HashSet<string> _exhaustedLogged = new(StringComparer.Ordinal);

    public IReadOnlyList<Assignment> Snapshot()
    {
        lock (_lock)
        {
            return [.. _byClient.Values.OrderBy(a => a.Route, StringComparer.Ordinal).ThenBy(a => a.Since)];
        }
    }

    /// <summary>
    /// The lease of <paramref name="client"/>'s address on <paramref name="route"/>, assigning one if
    /// the client is new; null when the pool is exhausted and the route refuses new clients.
    /// </summary>
    /// <param name="pinned">An address configured for this client (<c>ClientIds</c>), if any.</param>
    /// <param name="reserved">Addresses pinned to other clients; never handed to a new client.</param>
    public AssignmentLease? Acquire(string route, ClientIdentity client, AddressSet pool, IPAddress? pinned, IEnumerable<IPAddress> reserved, ExhaustedPolicy whenExhausted, TimeSpan idleTimeout)
    {
        Assignment assignment;
        lock (_lock)
        {
            Expire(idleTimeout);
            if (!_byClient.TryGetValue((route, client.Key), out assignment!))
            {
                var picked = pinned is not null ? (pinned, false) : Pick(route, pool, reserved.ToHashSet(), whenExhausted);
                if (picked.Item1 is not { } address)
                {
                    return null;
                }

                assignment = new Assignment(route, client, address, picked.Item2);
                _byClient[(route, client.Key)] = assignment;
                _clientsPerAddress[(route, address)] = _clientsPerAddress.GetValueOrDefault((route, address)) + 1;
                Log.Assigned(logger, route, client.Display, address, assignment.Shared ? " (shared: the pool is exhausted)" : "", assignment.WiresharkFilter);
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
            var addressKey = (assignment.Route, assignment.Address);
            if (--_clientsPerAddress[addressKey] == 0)
            {
                _clientsPerAddress.Remove(addressKey);
                _exhaustedLogged.Remove(assignment.Route);
            }

            Log.Expired(logger, assignment.Route, assignment.Client.Display, assignment.Address);
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
