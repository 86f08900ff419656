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
/// listening and its connections get the drain timeout to finish. An invalid edit is rejected
/// with the same errors as at startup and the running configuration stays.
/// </summary>
internal sealed partial class ConfigReloader(
    ReloadSource source,
    ConfigValidator validator,
    RouteTable routes,
    ListenerHost listeners,
    ListenerRegistry bound,
    ConnectionRegistry connections,
    BrokerDirectories brokers,
    ILogger<ConfigReloader> logger) : IHostedService, IDisposable
{
    /// <summary>Editors write a file in several steps; wait for them to settle before reading it.</summary>
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(250);

    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _background = [];
    private IDisposable? _watch;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (source.Configuration is { } configuration)
        {
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
            var result = await validator.ValidateAsync(ConfigReader.Read(configuration), cancellationToken).ConfigureAwait(false);
            if (!result.IsValid)
            {
                Log.Rejected(logger, result.Errors.Count, string.Join(Environment.NewLine + "  ", result.Errors));
                return false;
            }

            await ApplyAsync(routes.Current, result.Model!).ConfigureAwait(false);
            return true;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task ApplyAsync(ProxyModel old, ProxyModel next)
    {
        var removed = old.Routes.Where(r => !next.ByName.ContainsKey(r.Name)).ToList();
        var added = next.Routes.Where(r => !old.ByName.ContainsKey(r.Name)).ToList();
        var changed = next.Routes
            .Where(r => old.ByName.TryGetValue(r.Name, out var before) && !Same(before, r))
            .Select(r => (Before: old.ByName[r.Name], After: r))
            .ToList();
        if (removed.Count + added.Count + changed.Count == 0)
        {
            Log.Unchanged(logger);
            return;
        }

        // New connections see the new definitions from here on; established ones keep theirs.
        routes.Replace(next);

        var relisten = changed.Where(c => c.Before.Listen.Text != c.After.Listen.Text).ToList();
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
                // Http listeners are Kestrel HTTP endpoints, fixed when the server starts.
                Log.HttpNeedsRestart(logger, route.Name);
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

        foreach (var (before, after) in changed)
        {
            var what = before.Config!.Fields().Zip(after.Config!.Fields())
                .Where(pair => pair.First.Value != pair.Second.Value)
                .Select(pair => $"{pair.First.Field} {pair.First.Value ?? "(default)"} → {pair.Second.Value ?? "(default)"}");
            Log.Changed(logger, after.Name, string.Join("; ", what));
        }
    }

    private static bool Same(RouteModel before, RouteModel after) =>
        before.Config is { } a && after.Config is { } b && a.Fields().SequenceEqual(b.Fields());

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
        [LoggerMessage(700, LogLevel.Error, "Reload rejected, the running configuration stays; {Count} problem(s):\n  {Errors}")]
        public static partial void Rejected(ILogger logger, int count, string errors);

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

        [LoggerMessage(707, LogLevel.Warning, "Reload: route {Route} is an Http route; new or moved Http listen endpoints take effect at the next restart (its other settings apply now)")]
        public static partial void HttpNeedsRestart(ILogger logger, string route);

        [LoggerMessage(706, LogLevel.Warning, "Route {Route} (removed): {Count} connection(s) still open after the {Seconds} s drain; aborted")]
        public static partial void Aborted(ILogger logger, string route, int count, double seconds);
    }
}
