using System.Collections.Concurrent;
using System.Runtime.Versioning;
using BindProxy.Addressing;
using Microsoft.Extensions.Logging;

namespace BindProxy.Interception;

/// <summary>
/// The destination ports each intercepting route redirects right now, and the way to add one
/// while the proxy runs (a Kafka broker named in a response) before the client can connect to it.
/// Empty, and never touching nftables, unless an interception table is attached.
/// </summary>
internal sealed partial class InterceptedPorts(ILogger<InterceptedPorts> logger)
{
    private readonly ConcurrentDictionary<string, PortSet> _ports = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private InterceptionTable? _table;

    /// <summary>Starts adding ports through <paramref name="table"/>, whose sets hold <paramref name="routes"/>' ports.</summary>
    [SupportedOSPlatform("linux")]
    public void Attach(InterceptionTable table, IEnumerable<InterceptedRoute> routes)
    {
        lock (_lock)
        {
            _table = table;
            foreach (var route in routes)
            {
                _ports[route.Route] = route.Settings.Ports;
            }
        }
    }

    /// <summary>Stops adding ports (the table is being removed).</summary>
    public void Detach()
    {
        lock (_lock)
        {
            _table = null;
        }
    }

    public PortSet PortsOf(string route) => _ports.GetValueOrDefault(route, PortSet.Empty);

    /// <summary>
    /// Makes connections of <paramref name="route"/>'s selection to <paramref name="port"/> redirected
    /// from now on. Throws <see cref="InvalidOperationException"/> when that cannot be done: the
    /// caller then closes its client instead of letting it reach the port around the proxy.
    /// </summary>
    public void Add(string route, int port)
    {
        if (_ports.TryGetValue(route, out var known) && known.Contains(port))
        {
            return;
        }

        lock (_lock)
        {
            var current = PortsOf(route);
            if (current.Contains(port))
            {
                return;
            }

            if (_table is null || !OperatingSystem.IsLinux())
            {
                throw new InvalidOperationException($"route '{route}': port {port} cannot be intercepted: no interception table is installed");
            }

            if (!_table.TryAddPorts(route, PortSet.Of(port), out var error))
            {
                throw new InvalidOperationException($"route '{route}': port {port} could not be added to the intercepted ports: {error}");
            }

            _ports[route] = current.With(port);
            Log.PortAdded(logger, route, port, _ports[route].ToString());
        }
    }

    private static partial class Log
    {
        [LoggerMessage(910, LogLevel.Information, "Route {Route}: port {Port} is intercepted from now on (ports {Ports})")]
        public static partial void PortAdded(ILogger logger, string route, int port, string ports);
    }
}
