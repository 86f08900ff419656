using BindProxy.Forwarding;
using BindProxy.Http;
using BindProxy.Transport;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BindProxy.Hosting;

/// <summary>
/// Stopping the proxy: before any service stops, every listener closes and one line says what is
/// left and how long it may take; open connections then get the drain timeout (as configured now)
/// to finish and are reset when it is over — at once if the user asks to stop now (a second
/// Ctrl-C, see <see cref="ProxyLifetime"/>, or the host's stop token).
/// </summary>
internal sealed partial class ShutdownDrain(
    IHostLifetime lifetime,
    RouteTable routes,
    ListenerHost listeners,
    ListenerRegistry registry,
    RouteListeners families,
    HttpRouteClients httpClients,
    DrainCoordinator drains,
    ILogger<ShutdownDrain> logger) : IHostedLifecycleService
{
    private Task<int>? _drain;
    private TimeSpan _timeout;

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        listeners.Complete();
        await registry.UnbindAllAsync().ConfigureAwait(false);
        _timeout = routes.Current.DrainTimeout;
        // The hint only where a second signal does stop now (the proxy's own lifetime, not exec's or a test's).
        Log.Draining(logger, drains.Count(_ => true), _timeout.TotalSeconds, lifetime is ProxyLifetime ? "; Ctrl-C again to stop now" : "");

        _drain = families.DrainAsync(_ => true, _timeout, httpClients.CloseAll);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_drain is null)
        {
            return;
        }

        // The host's own stop token (a test's, say) means "stop now" too.
        using (cancellationToken.UnsafeRegister(static d => ((DrainCoordinator)d!).StopNow(), drains))
        {
            int aborted = await _drain.ConfigureAwait(false);
            if (aborted > 0)
            {
                Log.Aborted(logger, aborted, drains.StoppingNow ? "when asked to stop now" : $"after the {_timeout.TotalSeconds} s drain");
            }
        }

        // A connection that was still being set up is reset as soon as it is ready.
        foreach (var route in routes.All)
        {
            route.Retire();
        }
    }

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private static partial class Log
    {
        [LoggerMessage(730, LogLevel.Information, "Shutdown: draining {Count} connection(s), up to {Seconds} s{StopNow}")]
        public static partial void Draining(ILogger logger, int count, double seconds, string stopNow);

        [LoggerMessage(731, LogLevel.Warning, "Shutdown: {Count} connection(s) still open {When}; aborted")]
        public static partial void Aborted(ILogger logger, int count, string when);
    }
}
