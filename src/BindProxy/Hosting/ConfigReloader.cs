using BindProxy.Configuration;
using BindProxy.Forwarding;
using BindProxy.Kafka.Brokers;
using BindProxy.Wireshark;
using Microsoft.Extensions.Primitives;

namespace BindProxy.Hosting;

/// <summary>
/// Applies edits of the configuration file while the proxy runs: routes are added, removed or
/// changed without a restart, connections on unchanged routes are untouched, a changed route's
/// new definition reaches its whole family (its Kafka broker listeners), and a removed route's
/// family stops listening while its connections get the drain timeout to finish. An invalid edit (broken JSON,
/// an empty file, invalid values) is rejected with the same words as at startup and the running
/// configuration stays. What changed is told field by field from the route field table, and a
/// field that cannot take effect until a restart is named.
/// </summary>
internal sealed partial class ConfigReloader(
    ReloadSource source,
    ConfigValidator validator,
    RouteTable routes,
    RouteListeners listeners,
    BrokerDirectories brokers,
    InterceptionHost interception,
    SourceAssigner sources,
    DrainCoordinator drains,
    FileToxics toxics,
    CaptureFiles captureFiles,
    ILogger<ConfigReloader> logger) : IHostedService, IDisposable
{
    /// <summary>Editors write a file in several steps; wait for them to settle before reading it.</summary>
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(250);

    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _background = [];
    private IDisposable? _watch;

    // The file's restart-only keys (BindProxy:Engine, the Admin keys) as last read. The running values
    // may come from --engine or --admin instead, so an edit is told by comparing the file with itself.
    private IReadOnlyDictionary<string, string?> _fileRestartOnly = new Dictionary<string, string?>();

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (source.Configuration is { } configuration)
        {
            _fileRestartOnly = ConfigReader.ReadRestartOnly(configuration);
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
            Log.FileChanged(logger, Settle.TotalMilliseconds);
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

            var restartOnly = ConfigReader.ReadRestartOnly(configuration);
            var restartEdits = restartOnly.Where(kv => kv.Value != _fileRestartOnly.GetValueOrDefault(kv.Key))
                .Select(kv => (Key: kv.Key, Before: _fileRestartOnly.GetValueOrDefault(kv.Key) ?? "(default)", After: kv.Value ?? "(default)")).ToList();
            _fileRestartOnly = restartOnly;
            await ApplyAsync(routes.Current, result.Model!, restartEdits).ConfigureAwait(false);

            // Interception rules follow the routes as applied, with the ports their listeners got.
            await interception.ReloadedAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task ApplyAsync(ProxyModel old, ProxyModel next, List<(string Key, string Before, string After)> restartEdits)
    {
        var changed = new List<RouteChange>();
        var serving = new List<RouteModel>();
        foreach (var route in next.Routes)
        {
            if (!old.ByName.TryGetValue(route.Name, out var before))
            {
                serving.Add(route);
                continue;
            }

            var differences = RouteConfig.Fields.Differences(before.Config!, route.Config!);
            if (differences.Count == 0)
            {
                // The same instance: whatever is keyed by it (Http clients) stays.
                Log.RouteUnchanged(logger, route.Name);
                serving.Add(before);
                continue;
            }

            changed.Add(new RouteChange(before, route, differences));
            serving.Add(route);
        }

        bool drainChanged = old.DrainTimeout != next.DrainTimeout;
        var timeouts = new[]
        {
            (Key: nameof(ProxyConfig.FlushTimeout), Before: old.FlushTimeout, After: next.FlushTimeout),
            (Key: nameof(ProxyConfig.StallTimeout), Before: old.StallTimeout, After: next.StallTimeout),
        }.Where(t => t.Before != t.After).ToList();
        bool sameRoutes = next.Routes.Count == old.Routes.Count && next.Routes.All(r => old.ByName.ContainsKey(r.Name));
        bool captureChanged = old.Capture?.Describe() != next.Capture?.Describe();
        if (changed.Count == 0 && sameRoutes && !drainChanged && timeouts.Count == 0 && restartEdits.Count == 0 && !captureChanged)
        {
            Log.Unchanged(logger);
            return;
        }

        // New connections see the new definitions from here on (a changed route's members, such
        // as its Kafka broker listeners, with it); established ones keep theirs. The admin
        // endpoint and the forwarding engine are made once, at startup.
        var (added, removed) = routes.Replace(new ProxyModel(serving, next.DrainTimeout)
        {
            Admin = old.Admin,
            Engine = old.Engine,
            FlushTimeout = next.FlushTimeout,
            StallTimeout = next.StallTimeout,
            Capture = next.Capture,
        });

        // Routes that no longer intercept stop redirecting before their listeners close, so their
        // clients reach their servers directly instead of a closed port.
        await interception.WithdrawAsync().ConfigureAwait(false);

        foreach (var family in removed)
        {
            int draining = await listeners.RetireFamilyAsync(family).ConfigureAwait(false);
            brokers.Remove(family);
            Log.Removed(logger, family.Name, family.Model.Listen.Text, draining, next.DrainTimeout.TotalSeconds);
        }

        // Routes that listen elsewhere now, or on another kind of listener (HTTP or not), close
        // theirs first, so two routes may trade endpoints in one edit.
        var relisten = changed.Where(c => c.Before.Listen.Text != c.After.Listen.Text || IsHttp(c.Before) != IsHttp(c.After)).ToList();
        foreach (var change in relisten)
        {
            if (routes.TryGetRoot(change.After.Name, out var root))
            {
                await listeners.CloseListenersAsync(root, IsHttp(change.Before)).ConfigureAwait(false);
            }
        }

        foreach (var change in changed)
        {
            if (!routes.TryGetRoot(change.After.Name, out var root))
            {
                continue;
            }

            // The file's toxics follow the new definition, on open connections too (pipe path), before its listeners move.
            toxics.ApplyFamily(root);
            if (relisten.Contains(change))
            {
                await listeners.OpenAsync(root).ConfigureAwait(false);
            }

            if (change.Before.Protocol == RouteProtocol.Kafka)
            {
                // Brokers it no longer allows, or all of them when it is no longer a Kafka route, lose their listeners.
                await brokers.UpdateAsync(root).ConfigureAwait(false);
            }

            LogChange(change);
            Log.ChangeApplied(logger, change.After.Name, drains.Count(d => d.Served.Root == root),
                relisten.Contains(change) ? $"its listeners moved from {change.Before.Listen.Text} to {change.After.Listen.Text}" : $"its listeners stay on {change.After.Listen.Text}");
            LogMovedClients(change.After);
        }

        foreach (var root in added)
        {
            toxics.ApplyFamily(root);
            var endpoints = await listeners.OpenAsync(root).ConfigureAwait(false);
            var route = root.Model;
            Log.Added(logger, route.Name, string.Join(", ", endpoints), route.Upstream.Text, route.Sources.Addresses.ToString(), route.WiresharkFilter);
        }

        if (drainChanged)
        {
            Log.DrainTimeoutChanged(logger, old.DrainTimeout.ToString(), next.DrainTimeout.ToString());
        }

        foreach (var (key, before, after) in timeouts)
        {
            Log.TimeoutChanged(logger, key, before.ToString(), after.ToString());
        }

        foreach (var (key, before, after) in restartEdits)
        {
            Log.NeedsRestart(logger, key, before, after);
        }

        if (captureChanged)
        {
            // After the routes: a capture of a route added in this edit finds it.
            Log.CaptureChanged(logger, old.Capture?.Describe() ?? "off", next.Capture?.Describe() ?? "off");
            await captureFiles.ApplyAsync(next.Capture).ConfigureAwait(false);
        }
    }

    private void LogChange(RouteChange change)
    {
        Log.Changed(logger, change.After.Name, string.Join("; ", change.Differences.Select(d => $"{d.Field.Name} {d.Before ?? "(default)"} → {d.After ?? "(default)"}")));
        foreach (var (field, _, _) in change.Differences.Where(d => d.Field.Reload == FieldReload.Restart))
        {
            Log.FieldNeedsRestart(logger, change.After.Name, field.Name);
        }
    }

    /// <summary>
    /// Clients whose address the edit took away (a new pool, a new fixed address): their open
    /// connections keep it until they close, which a capture of the new address would miss.
    /// </summary>
    private void LogMovedClients(RouteModel route)
    {
        foreach (var (assignment, pinned) in sources.Outdated(route))
        {
            var next = pinned?.ToString() ?? $"an address of {route.Sources.Addresses}";
            if (assignment.ActiveConnections > 0)
            {
                Log.ClientKeepsAddress(logger, route.Name, assignment.Client.Display, assignment.Address, assignment.ActiveConnections, next);
            }
            else
            {
                Log.ClientMoves(logger, route.Name, assignment.Client.Display, assignment.Address, next);
            }
        }
    }

    private static bool IsHttp(RouteModel route) => route.Protocol == RouteProtocol.Http;

    /// <summary>One edited route: its model before and after, and the fields that differ.</summary>
    private sealed record RouteChange(RouteModel Before, RouteModel After, IReadOnlyList<(ConfigField Field, string? Before, string? After)> Differences);

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

        [LoggerMessage(708, LogLevel.Warning, "Reload: route {Route}: {Field} takes effect at the next restart")]
        public static partial void FieldNeedsRestart(ILogger logger, string route, string field);

        [LoggerMessage(734, LogLevel.Information, "Reload: {Key} {Before} → {After}, for every connection from now on")]
        public static partial void TimeoutChanged(ILogger logger, string key, string before, string after);

        [LoggerMessage(711, LogLevel.Information, "Reload: DrainTimeout {Before} → {After} for routes removed and for shutdown from now on")]
        public static partial void DrainTimeoutChanged(ILogger logger, string before, string after);

        [LoggerMessage(714, LogLevel.Warning, "Reload: {Field} {Before} → {After} takes effect at the next restart")]
        public static partial void NeedsRestart(ILogger logger, string field, string before, string after);

        [LoggerMessage(715, LogLevel.Warning, "Reload: route {Route}: {Client} holds {Address}, which the configuration no longer gives it; its {Count} open connection(s) keep it until they close, and its new connections get {Next}")]
        public static partial void ClientKeepsAddress(ILogger logger, string route, string client, System.Net.IPAddress address, int count, string next);

        [LoggerMessage(716, LogLevel.Information, "Reload: route {Route}: {Client} had {Address}, which the configuration no longer gives it; its next connection gets {Next}")]
        public static partial void ClientMoves(ILogger logger, string route, string client, System.Net.IPAddress address, string next);

        [LoggerMessage(717, LogLevel.Debug, "Reload: the configuration file changed; reading it in {Milliseconds} ms, once the editor is done writing")]
        public static partial void FileChanged(ILogger logger, double milliseconds);

        [LoggerMessage(718, LogLevel.Debug, "Reload: route {Route} unchanged; its listeners and connections stay as they are")]
        public static partial void RouteUnchanged(ILogger logger, string route);

        [LoggerMessage(719, LogLevel.Debug, "Reload: route {Route}: its {Count} open connection(s) keep the settings they started with and new ones get the new; {Listeners}")]
        public static partial void ChangeApplied(ILogger logger, string route, int count, string listeners);

        [LoggerMessage(1303, LogLevel.Information, "Reload: capture files {Before} → {After}")]
        public static partial void CaptureChanged(ILogger logger, string before, string after);

        [LoggerMessage(713, LogLevel.Warning, "Reload: {Warning}")]
        public static partial void Warning(ILogger logger, string warning);
    }
}
