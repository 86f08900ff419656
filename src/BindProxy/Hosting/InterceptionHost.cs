using System.Globalization;
using System.Net;
using System.Net.Sockets;
using BindProxy.Configuration;
using BindProxy.Forwarding;
using BindProxy.Interception;
using BindProxy.Transport;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BindProxy.Hosting;

/// <summary>
/// Keeps the proxy's nft table (<see cref="InterceptionTable"/>) in step with the routes that
/// intercept (<see cref="RouteModel.Intercept"/>: <c>exec</c>'s route, or a configured route's
/// <c>Intercept</c>): installed once their listeners are bound, its rules redirecting to the
/// ports those listeners got; replaced in one transaction when a reload changes what a route
/// intercepts or where it listens, or when a selected cgroup is made anew; and removed once the
/// proxy has stopped and the connections it redirected have closed, since their last packets
/// still pass through its NAT. Once installed, the table stays (with no rules, when no route
/// intercepts any more) until the proxy stops, for the same reason.
/// </summary>
internal sealed partial class InterceptionHost(
    RouteTable routes,
    ListenerRegistry listeners,
    InterceptedPorts intercepted,
    ILogger<InterceptionHost> logger) : IHostedLifecycleService, IDisposable
{
    /// <summary>How long the table waits at stop for the redirected connections' sockets to finish closing.</summary>
    private static readonly TimeSpan ClosingWait = TimeSpan.FromSeconds(2);

    /// <summary>How often selected cgroups are checked for having been made anew.</summary>
    internal static readonly TimeSpan CgroupCheck = TimeSpan.FromSeconds(1);

    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();

    // Every listener port a rule has redirected to: the sockets that must be closed before the table goes.
    private readonly HashSet<int> _redirectedTo = [];
    private InterceptionTable? _table;
    private Nftables? _nft;

    // Per intercepting route, what its rules were made from (selector, cgroup id, ports, listener ports).
    private Dictionary<string, string> _applied = new(StringComparer.Ordinal);

    // The routes' parts of the table as installed last.
    private IReadOnlyList<InterceptedRoute> _installed = [];
    private string? _lastFailure;
    private Task _watch = Task.CompletedTask;
    private bool _stopped;
    private int _disposed;

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// Every listener is bound by now (hosted services have started): installs the rules, or
    /// stops the start when they cannot be installed, since the selected clients would reach their
    /// servers around the proxy.
    /// </summary>
    public async Task StartedAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Apply() is { } failure)
            {
                throw failure;
            }
        }
        finally
        {
            _gate.Release();
        }

        _watch = WatchCgroupsAsync(_stopping.Token);
    }

    /// <summary>
    /// After a reload was applied (its listeners bound): the table follows the routes as they are
    /// now. When the kernel refuses the new rules the table stays as it was, with an error logged.
    /// </summary>
    public Task ReloadedAsync(CancellationToken cancellationToken) => ApplyLoggedAsync(cancellationToken);

    /// <summary>
    /// A reload made its routes current and is about to close the listeners of the routes it
    /// removed: the rules of every route that no longer intercepts go now, the others stay as they
    /// are until <see cref="ReloadedAsync"/>. The table itself stays, with the NAT the redirected
    /// connections still draining need.
    /// </summary>
    public async Task WithdrawAsync()
    {
        await _gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            if (_stopped || _table is null || !OperatingSystem.IsLinux())
            {
                return;
            }

            var still = routes.Roots.Where(r => r.Model.Intercept is not null).Select(r => r.Name).ToHashSet(StringComparer.Ordinal);
            var kept = _installed.Where(r => still.Contains(r.Route)).ToList();
            if (kept.Count == _installed.Count && _applied.Keys.All(still.Contains))
            {
                return;
            }

            IReadOnlyList<InterceptedRoute> now = kept;
            if (kept.Count != _installed.Count && !intercepted.TryInstall(_table, kept, out now, out var error))
            {
                Log.NotReplaced(logger, error);
                return;
            }

            foreach (var gone in _applied.Keys.Where(k => !still.Contains(k)))
            {
                Log.NoLongerIntercepted(logger, gone, _table.Name);
            }

            _installed = now;
            _applied = _applied.Where(a => still.Contains(a.Key)).ToDictionary(StringComparer.Ordinal);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Ports found from here on are not added, and cgroups no longer watched: the table is about to go.</summary>
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        intercepted.Detach();
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _watch.ConfigureAwait(false);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Every service has stopped and the connections have drained: the table goes.</summary>
    public async Task StoppedAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            _stopped = true;
            if (_table is null || !OperatingSystem.IsLinux())
            {
                return;
            }

            await ClosingConnections.WaitAsync(_redirectedTo, ClosingWait).ConfigureAwait(false);
            if (!_table.Remove(out var error))
            {
                Log.NotRemoved(logger, _table.Name, error);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose()
    {
        // Disposed twice: as the singleton and as the hosted service made from it.
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stopping.Cancel();
        if (OperatingSystem.IsLinux())
        {
            _table?.Dispose();
            _nft?.Dispose();
        }

        _gate.Dispose();
        _stopping.Dispose();
    }

    /// <summary>
    /// A group removed and made again at the same path (a systemd unit restarting) is a new group
    /// that the loaded rule does not match: while a route selects a cgroup, its id is checked every
    /// <see cref="CgroupCheck"/> and the rule loaded again when it changed.
    /// </summary>
    private async Task WatchCgroupsAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(CgroupCheck);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                if (routes.Current.Routes.Any(r => r.Intercept?.Selector is InterceptSelector.Cgroup))
                {
                    await ApplyLoggedAsync(cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task ApplyLoggedAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var failure = _stopped ? null : Apply();
            if (failure is not null && failure.Message != _lastFailure)
            {
                Log.NotReplaced(logger, failure.Message);
            }

            _lastFailure = failure?.Message;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Installs the rules the routes need now, if they differ from the installed ones; the failure, or null.</summary>
    private InterceptionUnavailableException? Apply()
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        var current = routes.Roots.Where(r => r.Model.Intercept is not null).Select(Rules).ToList();
        if (_table is null && current.Count == 0)
        {
            return null; // nothing intercepts, and never did: no table
        }

        var made = current.ToDictionary(r => r.Route.Route, r => r.Key, StringComparer.Ordinal);
        if (_table is not null && made.Count == _applied.Count && made.All(m => _applied.GetValueOrDefault(m.Key) == m.Value))
        {
            return null;
        }

        // A selected group that does not exist (now) has no rule: nft could not load one, and it would match nothing.
        var wanted = current.Where(r => !r.Gone).Select(r => r.Route).ToList();
        if (_table is null)
        {
            if (!Nftables.TryOpen(out _nft, out var openError))
            {
                return Unavailable(wanted, openError);
            }

            InterceptionTable.RemoveStale(_nft!, InterceptionTable.IsRunning, logger);
            _table = new InterceptionTable(_nft!, Environment.ProcessId, logger);
        }

        if (!intercepted.TryInstall(_table, wanted, out var installed, out var error))
        {
            return Unavailable(wanted, error);
        }

        foreach (var (route, _, gone) in current.Where(r => _applied.GetValueOrDefault(r.Route.Route) != r.Key))
        {
            var selector = route.Settings.Selector.ToString()!;
            if (gone)
            {
                Log.CgroupGone(logger, route.Route, selector);
            }
            else if (route.Ipv4Port is null && route.Ipv6Port is null)
            {
                Log.NoListener(logger, route.Route, selector);
            }
            else
            {
                var ports = installed.First(r => r.Route == route.Route).Settings.Ports.ToString();
                Log.Redirecting(logger, route.Route, _table.Name, selector, ports, string.Join(", ", listeners.For(route.Route)));
            }
        }

        _installed = installed;
        foreach (var route in installed)
        {
            _redirectedTo.UnionWith(new[] { route.Ipv4Port, route.Ipv6Port }.OfType<int>());
        }

        foreach (var gone in _applied.Keys.Where(k => !made.ContainsKey(k)))
        {
            Log.NoLongerIntercepted(logger, gone, _table.Name);
        }

        _applied = made;
        return null;
    }

    /// <summary>
    /// A route's part of the table, with the ports its listeners are bound to now, and what it is
    /// made from (its key): the selector, the selected group's id, the ports and the listener ports.
    /// </summary>
    private (InterceptedRoute Route, string Key, bool Gone) Rules(ServedRoute served)
    {
        var route = served.Model;
        var bound = listeners.For(served);
        var rules = new InterceptedRoute(route.Name, route.Intercept!, PortOf(bound, AddressFamily.InterNetwork), PortOf(bound, AddressFamily.InterNetworkV6));
        var group = route.Intercept!.Selector is InterceptSelector.Cgroup cgroup ? CgroupId.Of(cgroup.Directory) : null;
        bool gone = route.Intercept.Selector is InterceptSelector.Cgroup && group is null;
        var key = string.Create(CultureInfo.InvariantCulture,
            $"{rules.Settings.Selector} #{group} {rules.Settings.Ports} → {rules.Ipv4Port}/{rules.Ipv6Port}");
        return (rules, key, gone);
    }

    /// <summary>
    /// A redirect lands on the loopback address of the connection's family, where the route listens
    /// (or on a wildcard, which receives it too).
    /// </summary>
    private static int? PortOf(IReadOnlyList<IPEndPoint> bound, AddressFamily family) =>
        bound.FirstOrDefault(e => e.AddressFamily == family && (IPAddress.IsLoopback(e.Address) || e.Address.Equals(IPAddress.Any) || e.Address.Equals(IPAddress.IPv6Any)))?.Port;

    private static InterceptionUnavailableException Unavailable(List<InterceptedRoute> routes, string error) =>
        new($"{(routes.Count == 1 ? "route" : "routes")} {string.Join(", ", routes.Select(r => $"'{r.Route}'"))}: Intercept: nftables refused the rules: {error}. " +
            "The kernel needs nf_tables with NAT and socket matching (modules nf_tables, nft_nat, nft_redir, nft_socket; on Debian/Ubuntu they ship with the kernel)")
        {
            NftError = error,
        };

    private static partial class Log
    {
        [LoggerMessage(960, LogLevel.Information, "Route {Route}: table inet {Table} redirects TCP connections of {Selector} to ports {Ports} to {Listeners}")]
        public static partial void Redirecting(ILogger logger, string route, string table, string selector, string ports, string listeners);

        [LoggerMessage(961, LogLevel.Information, "Route {Route}: no longer intercepted; its rules are gone from table inet {Table}")]
        public static partial void NoLongerIntercepted(ILogger logger, string route, string table);

        [LoggerMessage(962, LogLevel.Error, "Interception: the rules could not be replaced, the ones before stay: {Reason}")]
        public static partial void NotReplaced(ILogger logger, string reason);

        [LoggerMessage(963, LogLevel.Warning, "Interception: table inet {Table} could not be removed: {Error}")]
        public static partial void NotRemoved(ILogger logger, string table, string error);

        [LoggerMessage(964, LogLevel.Warning, "Route {Route}: nothing of {Selector} is redirected: the route has no listener on 127.0.0.1, [::1] or a wildcard")]
        public static partial void NoListener(ILogger logger, string route, string selector);

        [LoggerMessage(965, LogLevel.Warning, "Route {Route}: {Selector} does not exist (any more); nothing is intercepted until it is made again, and then its rule follows it")]
        public static partial void CgroupGone(ILogger logger, string route, string selector);
    }
}
