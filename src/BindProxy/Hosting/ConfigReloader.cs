using System.Net;
using BindProxy.Configuration;
using BindProxy.Forwarding;
using BindProxy.Kafka.Brokers;
using BindProxy.Transport;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;

namespace BindProxy.Hosting;

/// <summary>The configuration to watch for edits; absent in quick mode, where routes come from the command line.</summary>
internal sealed record ReloadSource(IConfiguration? Configuration);

/// <summary>
/// Applies edits of the configuration file while the proxy runs: routes are added, removed or
/// changed without a restart, connections on unchanged routes are untouched, a removed route stops
/// listening and its connections get the drain timeout to finish. An invalid edit (broken JSON,
/// an empty file, invalid values) is rejected with the same words as at startup and the running
/// configuration stays. What changed is told field by field from the route field table, and a
/// field that cannot take effect until a restart is named.
/// </summary>
internal sealed partial class ConfigReloader(
    ReloadSource source,
    ConfigValidator validator,
    RouteTable routes,
    ListenerHost listeners,
    ListenerRegistry bound,
    ConnectionRegistry connections,
    BrokerDirectories brokers,
    ShutdownSettings shutdown,
    InterceptionHost interception,
    ILogger<ConfigReloader> logger) : IHostedService, IDisposable
{
    /// <summary>Editors write a file in several steps; wait for them to settle before reading it.</summary>
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(250);

    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _background = [];
    private IDisposable? _watch;

    // The file's Admin:Listen as last applied. The running endpoint may come from --admin instead,
    // so an edit is told by comparing the file with itself.
    private string? _fileAdmin;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (source.Configuration is { } configuration)
        {
            _fileAdmin = ConfigReader.ReadAdmin(configuration)?.Listen;
            _watch = ChangeToken.OnChange(configuration.GetReloadToken, () => Track(ReloadSoonAsync()));
        }

        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _watch?.Dispose();
        await _stopping.CancelAsync().ConfigureAwait(false);
        Task[] background;
        lock (_background)
        {
            background = [.. _background];
        }

        await Task.WhenAll(background).ConfigureAwait(false);
    }

    public void Dispose()
    {
        _watch?.Dispose();
        _gate.Dispose();
        _stopping.Dispose();
    }

    private void Track(Task task)
    {
        lock (_background)
        {
            _background.RemoveAll(t => t.IsCompleted);
            _background.Add(task);
        }
    }

    private async Task ReloadSoonAsync()
    {
        try
        {
            await Task.Delay(Settle, _stopping.Token).ConfigureAwait(false);
            await ReloadAsync(_stopping.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Reads, validates and applies the configuration as it is now.</summary>
    public async Task<bool> ReloadAsync(CancellationToken cancellationToken)
    {
        if (source.Configuration is not { } configuration)
        {
            return false;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // A file that no longer parses reads as an empty configuration: say why instead.
            if (ConfigLoader.Problem(configuration) is { } problem)
            {
                Log.Rejected(logger, problem);
                return false;
            }

            var result = await validator.ValidateAsync(ConfigReader.Read(configuration), cancellationToken).ConfigureAwait(false);
            foreach (var warning in result.Warnings)
            {
                Log.Warning(logger, warning);
            }

            if (!result.IsValid)
            {
                Log.Rejected(logger, ProblemReport.Describe(result.Errors));
                return false;
            }

            var fileAdmin = ConfigReader.ReadAdmin(configuration)?.Listen;
            (string Before, string After)? adminEdit = fileAdmin == _fileAdmin ? null : (_fileAdmin ?? "(none)", fileAdmin ?? "(none)");
            _fileAdmin = fileAdmin;
            await ApplyAsync(routes.Current, result.Model!, adminEdit).ConfigureAwait(false);

            // Interception rules follow the routes as applied, with the ports their listeners got.
            await interception.ReloadedAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task ApplyAsync(ProxyModel old, ProxyModel next, (string Before, string After)? adminEdit)
    {
        var removed = old.Routes.Where(r => !next.ByName.ContainsKey(r.Name)).ToList();
        var added = next.Routes.Where(r => !old.ByName.ContainsKey(r.Name)).ToList();
        var changed = new List<RouteChange>();
        var serving = new List<RouteModel>();
        foreach (var route in next.Routes)
        {
            if (!old.ByName.TryGetValue(route.Name, out var before))
            {
                serving.Add(route);
                continue;
            }

            var differences = RouteFields.Differences(before.Config!, route.Config!);
            if (differences.Count == 0)
            {
                // The same instance: whatever is keyed by it (Http clients, broker directories) stays.
                serving.Add(before);
                continue;
            }

            var change = new RouteChange(before, route, differences);
            changed.Add(change);
            serving.Add(change.WaitsForRestart ? before : route);
        }

        bool drainChanged = old.DrainTimeout != next.DrainTimeout;
        if (removed.Count + added.Count + changed.Count == 0 && !drainChanged && adminEdit is null)
        {
            Log.Unchanged(logger);
            return;
        }

        // New connections see the new definitions from here on; established ones keep theirs. The
        // admin endpoint is made once, at startup.
        routes.Replace(new ProxyModel(serving, next.DrainTimeout) { Admin = old.Admin });

        var relisten = changed.Where(c => !c.WaitsForRestart && c.Before.Listen.Text != c.After.Listen.Text).ToList();
        foreach (var route in removed.Concat(relisten.Select(c => c.Before)))
        {
            await bound.UnbindRouteAsync(route.Name).ConfigureAwait(false);
            brokers.Remove(route.Name);
        }

        foreach (var route in removed)
        {
            int draining = connections.Snapshot().Count(c => ListenerRegistry.BelongsTo(c.Route, route.Name));
            Log.Removed(logger, route.Name, route.Listen.Text, draining, next.DrainTimeout.TotalSeconds);
            Track(AbortAfterDrainAsync(route.Name, next.DrainTimeout));
        }

        foreach (var route in added.Concat(relisten.Select(c => c.After)))
        {
            if (route.Protocol == RouteProtocol.Http)
            {
                // Http listeners are Kestrel HTTP endpoints, fixed when the server starts; a moved
                // one is named below with the route's other changes.
                if (added.Contains(route))
                {
                    Log.HttpNeedsRestart(logger, route.Name);
                }

                continue;
            }

            var endpoints = new List<IPEndPoint>();
            foreach (var endpoint in route.Listen.Endpoints)
            {
                try
                {
                    endpoints.Add(await listeners.BindAsync(route.Name, endpoint).ConfigureAwait(false));
                }
                catch (IOException e)
                {
                    Log.BindFailed(logger, route.Name, endpoint, e.Message);
                }
            }

            if (added.Contains(route))
            {
                Log.Added(logger, route.Name, string.Join(", ", endpoints), route.Upstream.Text, route.Sources.Addresses.ToString(), route.WiresharkFilter);
            }
        }

        foreach (var change in changed)
        {
            LogChange(change);
        }

        if (drainChanged)
        {
            Log.DrainTimeoutChanged(logger, old.DrainTimeout.ToString(), next.DrainTimeout.ToString(), shutdown.DrainTimeout.ToString());
        }

        if (adminEdit is var (adminBefore, adminAfter))
        {
            Log.AdminNeedsRestart(logger, adminBefore, adminAfter);
        }
    }

    private void LogChange(RouteChange change)
    {
        var (before, after, differences) = (change.Before, change.After, change.Differences);
        Log.Changed(logger, after.Name, string.Join("; ", differences.Select(d => $"{d.Field.Name} {d.Before ?? "(default)"} → {d.After ?? "(default)"}")));
        if (change.WaitsForRestart)
        {
            Log.ProtocolNeedsRestart(logger, after.Name, before.Protocol, after.Protocol);
            return;
        }

        bool http = before.Protocol == RouteProtocol.Http || after.Protocol == RouteProtocol.Http;
        foreach (var (field, _, _) in differences)
        {
            if (field.Reload == FieldReload.Restart)
            {
                Log.FieldNeedsRestart(logger, after.Name, field.Name, "the route's Kafka broker directory keeps what it was made with");
            }
            else if (field.Reload == FieldReload.RestartOnHttp && http)
            {
                Log.FieldNeedsRestart(logger, after.Name, field.Name, "Http listeners are Kestrel HTTP endpoints, fixed when the server starts");
            }
        }

        // Broker listeners copy their bootstrap route's settings when they open.
        var kept = differences.Where(d => d.Field.CopiedToBrokers && d.Field.Reload != FieldReload.Restart).Select(d => d.Field.Name).ToList();
        if (kept.Count > 0 && before.Protocol == RouteProtocol.Kafka &&
            brokers.All.TryGetValue(before.Name, out var directory) && directory.Brokers.Count > 0)
        {
            Log.BrokersKeep(logger, after.Name, directory.Brokers.Count, string.Join(", ", kept));
        }
    }

    /// <summary>One edited route: its model before and after, and the fields that differ.</summary>
    private sealed record RouteChange(RouteModel Before, RouteModel After, IReadOnlyList<(RouteField Field, string? Before, string? After)> Differences)
    {
        /// <summary>
        /// A route that becomes or stops being an Http route changes its kind of listener (a Kestrel
        /// HTTP endpoint, fixed at startup, against the proxy's own): it keeps running as it was.
        /// </summary>
        public bool WaitsForRestart => Before.Protocol != After.Protocol &&
            (Before.Protocol == RouteProtocol.Http || After.Protocol == RouteProtocol.Http);
    }

    private async Task AbortAfterDrainAsync(string route, TimeSpan drain)
    {
        try
        {
            await Task.Delay(drain, _stopping.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return; // shutting down: the shutdown drain takes over
        }

        var left = connections.Snapshot().Where(c => ListenerRegistry.BelongsTo(c.Route, route) && !routes.TryFind(c.Route, out _)).ToList();
        if (left.Count > 0)
        {
            Log.Aborted(logger, route, left.Count, drain.TotalSeconds);
            foreach (var connection in left)
            {
                connection.Abort(CloseReason.ProxyAborted);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(700, LogLevel.Error, "Reload rejected, the running configuration stays: {Problems}")]
        public static partial void Rejected(ILogger logger, string problems);

        [LoggerMessage(701, LogLevel.Information, "Reload: no route changed")]
        public static partial void Unchanged(ILogger logger);

        [LoggerMessage(702, LogLevel.Information, "Reload: route {Route} added: {Listen} → {Upstream} from {Source}; Wireshark: {Filter}")]
        public static partial void Added(ILogger logger, string route, string listen, string upstream, string source, string filter);

        [LoggerMessage(703, LogLevel.Information, "Reload: route {Route} removed: stopped listening on {Listen}; {Count} connection(s) may finish within {Seconds} s")]
        public static partial void Removed(ILogger logger, string route, string listen, int count, double seconds);

        [LoggerMessage(704, LogLevel.Information, "Reload: route {Route} changed: {Changes}")]
        public static partial void Changed(ILogger logger, string route, string changes);

        [LoggerMessage(705, LogLevel.Error, "Reload: route {Route} cannot listen on {Endpoint}: {Reason}")]
        public static partial void BindFailed(ILogger logger, string route, IPEndPoint endpoint, string reason);

        [LoggerMessage(706, LogLevel.Warning, "Route {Route} (removed): {Count} connection(s) still open after the {Seconds} s drain; aborted")]
        public static partial void Aborted(ILogger logger, string route, int count, double seconds);

        [LoggerMessage(707, LogLevel.Warning, "Reload: route {Route} is an Http route; its listen endpoints take effect at the next restart (its other settings apply now)")]
        public static partial void HttpNeedsRestart(ILogger logger, string route);

        [LoggerMessage(708, LogLevel.Warning, "Reload: route {Route}: {Field} takes effect at the next restart ({Reason})")]
        public static partial void FieldNeedsRestart(ILogger logger, string route, string field, string reason);

        [LoggerMessage(709, LogLevel.Warning, "Reload: route {Route}: Protocol {Before} → {After} takes effect at the next restart (an Http route's listener is a Kestrel HTTP endpoint, fixed when the server starts); until then the route runs as it was")]
        public static partial void ProtocolNeedsRestart(ILogger logger, string route, RouteProtocol before, RouteProtocol after);

        [LoggerMessage(710, LogLevel.Warning, "Reload: route {Route}: its {Count} open Kafka broker listener(s) keep their {Fields} until the next restart; new bootstrap connections use the new values")]
        public static partial void BrokersKeep(ILogger logger, string route, int count, string fields);

        [LoggerMessage(711, LogLevel.Information, "Reload: DrainTimeout {Before} → {After} for routes removed from now on; shutdown keeps {Shutdown} until the next restart")]
        public static partial void DrainTimeoutChanged(ILogger logger, string before, string after, string shutdown);

        [LoggerMessage(712, LogLevel.Warning, "Reload: Admin:Listen {Before} → {After} takes effect at the next restart (the admin endpoint is made once, at startup)")]
        public static partial void AdminNeedsRestart(ILogger logger, string before, string after);

        [LoggerMessage(713, LogLevel.Warning, "Reload: {Warning}")]
        public static partial void Warning(ILogger logger, string warning);
    }
}
