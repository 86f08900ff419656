using System.Diagnostics;
using System.Net;
using BindProxy.Configuration;
using BindProxy.Forwarding;
using BindProxy.Http;
using BindProxy.Kafka.Brokers;
using BindProxy.Transport;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BindProxy.Hosting;

/// <summary>
/// Opens and closes the listeners of route families: the configured routes' at startup, routes
/// added or moved by a reload, and Kafka broker listeners (for <see cref="BrokerDirectory"/>).
/// A removed route or family stops listening at once; its connections drain in the background
/// within the drain timeout (<see cref="DrainCoordinator"/>), then are reset.
/// </summary>
internal sealed partial class RouteListeners(
    RouteTable routes,
    ListenerHost host,
    ListenerRegistry registry,
    DrainCoordinator drains,
    HttpRouteClients httpClients,
    FileToxics toxics,
    ILogger<RouteListeners> logger) : IHostedService, IBrokerListeners
{
    private readonly List<Task> _draining = [];

    /// <summary>Opens the configured routes' listeners; one that cannot be opened stops the start with one line.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var root in routes.Roots)
        {
            // Its first connection meets the file's toxics already.
            toxics.ApplyFamily(root);
            foreach (var endpoint in root.Model.Listen.Endpoints)
            {
                var result = await host.BindAsync(root, endpoint, cancellationToken).ConfigureAwait(false);
                if (!result.IsBound)
                {
                    throw new ListenerUnavailableException(result.Error);
                }
            }
        }
    }

    /// <summary>Waits for the drains of removed routes (the shutdown's drain resets what they leave, or cuts them short).</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        Task[] draining;
        lock (_draining)
        {
            draining = [.. _draining];
        }

        await Task.WhenAll(draining).ConfigureAwait(false);
    }

    /// <summary>Opens every listen endpoint of <paramref name="route"/>; the endpoints bound. One that cannot be opened is logged and left out.</summary>
    public async Task<IReadOnlyList<IPEndPoint>> OpenAsync(ServedRoute route)
    {
        var bound = new List<IPEndPoint>();
        foreach (var endpoint in route.Model.Listen.Endpoints)
        {
            var result = await host.BindAsync(route, endpoint, CancellationToken.None).ConfigureAwait(false);
            if (result.IsBound)
            {
                bound.Add(result.Bound);
            }
            else
            {
                Log.ListenFailed(logger, result.Error);
            }
        }

        return bound;
    }

    /// <summary>
    /// Closes the listeners <paramref name="route"/> has now (not its members'), before it opens
    /// others; its connections go on. When it stops being an Http route, its clients' connections
    /// are asked to close after their request, and reset past the drain timeout.
    /// </summary>
    public async Task CloseListenersAsync(ServedRoute route, bool wasHttp)
    {
        await registry.UnbindAsync(route).ConfigureAwait(false);
        if (wasHttp && route.Model.Protocol != RouteProtocol.Http)
        {
            Track(DrainAsync(route.Name, d => d is HttpClientConnection && d.Served == route, routes.Current.DrainTimeout, "is no longer an Http route"));
        }
    }

    /// <summary>
    /// Closes a removed family's listeners now; its connections may finish within the drain
    /// timeout, then are reset (in the background, with a line if any were). Returns how many are draining.
    /// </summary>
    public async Task<int> RetireFamilyAsync(ServedRoute root)
    {
        root.Remove();
        await registry.UnbindFamilyAsync(root).ConfigureAwait(false);
        bool InFamily(IDrainable d) => d.Served.Root == root;
        int draining = drains.Count(InFamily);
        Track(RetireAsync(root, InFamily, routes.Current.DrainTimeout, "removed"));
        return draining;
    }

    public ValueTask<BindResult> ListenAsync(ServedRoute broker, IPEndPoint endpoint, CancellationToken cancellationToken)
    {
        // A broker listener carries its root's toxics from the file, from its first connection on.
        toxics.Apply(broker);
        return host.BindAsync(broker, endpoint, cancellationToken);
    }

    public async ValueTask CloseAsync(ServedRoute broker, string reason)
    {
        broker.Remove();
        if (await registry.UnbindAsync(broker).ConfigureAwait(false) > 0)
        {
            Log.BrokerClosed(logger, broker.Name, reason);
        }

        Track(RetireAsync(broker, d => d.Served == broker, routes.Current.DrainTimeout, "closed"));
    }

    private async Task RetireAsync(ServedRoute route, Func<IDrainable, bool> which, TimeSpan drain, string what)
    {
        int aborted = await DrainAsync(which, drain, () => httpClients.Remove(route.Name)).ConfigureAwait(false);
        route.Retire();
        if (aborted > 0)
        {
            Log.Aborted(logger, route.Name, what, aborted, drain.TotalSeconds);
        }
    }

    /// <summary>
    /// Lets what <paramref name="which"/> selects finish within <paramref name="drain"/> and resets
    /// the rest; returns how many were reset. Http routes' client connections go first: once their
    /// requests are over, <paramref name="closePools"/> closes the pooled upstream connections that
    /// carried them (idle ones would otherwise wait out the drain), and the rest get the time left.
    /// </summary>
    public async Task<int> DrainAsync(Func<IDrainable, bool> which, TimeSpan drain, Action closePools)
    {
        var started = Stopwatch.GetTimestamp();
        int aborted = (await drains.DrainAsync(d => d is HttpClientConnection && which(d), drain).ConfigureAwait(false)).Aborted;
        closePools();
        var left = drain - Stopwatch.GetElapsedTime(started);
        aborted += (await drains.DrainAsync(which, left > TimeSpan.Zero ? left : TimeSpan.Zero).ConfigureAwait(false)).Aborted;
        return aborted;
    }

    private async Task DrainAsync(string route, Func<IDrainable, bool> which, TimeSpan drain, string what)
    {
        var result = await drains.DrainAsync(which, drain).ConfigureAwait(false);
        if (result.Aborted > 0)
        {
            Log.Aborted(logger, route, what, result.Aborted, drain.TotalSeconds);
        }
    }

    private void Track(Task task)
    {
        lock (_draining)
        {
            _draining.RemoveAll(t => t.IsCompleted);
            _draining.Add(task);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(705, LogLevel.Error, "Reload: {Problem}")]
        public static partial void ListenFailed(ILogger logger, string problem);

        [LoggerMessage(706, LogLevel.Warning, "Route {Route} ({What}): {Count} connection(s) still open after the {Seconds} s drain; aborted")]
        public static partial void Aborted(ILogger logger, string route, string what, int count, double seconds);

        [LoggerMessage(402, LogLevel.Information, "Route {Route}: listener closed: {Reason}")]
        public static partial void BrokerClosed(ILogger logger, string route, string reason);
    }
}
