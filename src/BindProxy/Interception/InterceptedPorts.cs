using System.Collections.Concurrent;
using System.Runtime.Versioning;
using BindProxy.Addressing;
using Microsoft.Extensions.Logging;

namespace BindProxy.Interception;

/// <summary>
/// The destination ports each intercepting route redirects right now, and the way to add one
/// while the proxy runs (a Kafka broker named in a response) before the client can connect to it.
/// Empty, and never touching nftables, unless an interception table is installed.
/// </summary>
internal sealed partial class InterceptedPorts(ILogger<InterceptedPorts> logger)
{
    private readonly ConcurrentDictionary<string, PortSet> _ports = new(StringComparer.Ordinal);

    // Ports added while the proxy runs, per route: a new table keeps them, since the clients still
    // know the brokers they were found for.
    private readonly Dictionary<string, PortSet> _found = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private InterceptionTable? _table;

    /// <summary>
    /// Installs <paramref name="table"/> for <paramref name="routes"/> (replacing what it held, in
    /// one transaction) with the ports found so far for routes that are still there, and adds
    /// ports through it from then on. False with nft's error when the table could not be installed:
    /// the one before stays as it was.
    /// </summary>
    [SupportedOSPlatform("linux")]
    public bool TryInstall(InterceptionTable table, IReadOnlyList<InterceptedRoute> routes, out IReadOnlyList<InterceptedRoute> installed, out string error)
    {
        lock (_lock)
        {
            installed = [.. routes.Select(r => _found.TryGetValue(r.Route, out var found)
                ? r with { Settings = r.Settings with { Ports = r.Settings.Ports.Union(found) } }
                : r)];
            if (!table.TryInstall(installed, out error))
            {
                return false;
            }

            _table = table;
            var names = installed.Select(r => r.Route).ToHashSet(StringComparer.Ordinal);
            foreach (var gone in _ports.Keys.Where(k => !names.Contains(k)))
            {
                _ports.TryRemove(gone, out _);
                _found.Remove(gone);
            }

            foreach (var route in installed)
            {
                _ports[route.Route] = route.Settings.Ports;
            }

            return true;
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
            _found[route] = _found.GetValueOrDefault(route, PortSet.Empty).With(port);
            Log.PortAdded(logger, route, port, _ports[route].ToString());
        }
    }

    private static partial class Log
    {
        [LoggerMessage(910, LogLevel.Information, "Route {Route}: port {Port} is intercepted from now on (ports {Ports})")]
        public static partial void PortAdded(ILogger logger, string route, int port, string ports);
    }
}
