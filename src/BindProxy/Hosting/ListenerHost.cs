using System.Collections.Concurrent;
using System.Net;
using BindProxy.Forwarding;
using BindProxy.Transport;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BindProxy.Hosting;

/// <summary>
/// Proxy listeners opened while the proxy runs — Kafka broker listeners and routes added by a
/// configuration reload. Same transport and connection handler as the listeners Kestrel opens at
/// startup, with the accept loop Kestrel would run; stopped with a drain at shutdown.
/// </summary>
internal sealed partial class ListenerHost(
    SocketTransportFactory transport,
    IServiceProvider services,
    ShutdownSettings shutdown,
    ILogger<ListenerHost> logger) : IHostedService
{
    private readonly ConcurrentDictionary<IConnectionListener, Task> _acceptLoops = new();
    private readonly ConcurrentDictionary<ConnectionContext, string> _live = new();
    private int _stopping;

    /// <summary>Binds <paramref name="endpoint"/> for <paramref name="route"/> and starts accepting; returns the bound endpoint.</summary>
    public async Task<IPEndPoint> BindAsync(string route, IPEndPoint endpoint)
    {
        if (Volatile.Read(ref _stopping) != 0)
        {
            throw new InvalidOperationException("the proxy is shutting down");
        }

        var listener = await transport.BindAsync(new RouteEndPoint(route, endpoint)).ConfigureAwait(false);
        _acceptLoops[listener] = AcceptLoopAsync(listener);
        return ((RouteEndPoint)listener.EndPoint).Address;
    }

    private async Task AcceptLoopAsync(IConnectionListener listener)
    {
        var handler = (ProxyConnectionHandler)services.GetService(typeof(ProxyConnectionHandler))!;
        var running = new List<Task>();
        while (await listener.AcceptAsync().ConfigureAwait(false) is { } connection)
        {
            running.RemoveAll(t => t.IsCompleted);
            // Off the accepting thread, as Kestrel does: on Linux that is a relay loop's.
            running.Add(Task.Run(() => ServeAsync(handler, connection)));
        }

        await Task.WhenAll(running).ConfigureAwait(false);
        await listener.DisposeAsync().ConfigureAwait(false);
    }

    private async Task ServeAsync(ProxyConnectionHandler handler, ConnectionContext connection)
    {
        var route = connection.Features.Get<IInboundSocketFeature>()?.Route ?? "";
        _live[connection] = route;
        await using (connection.ConfigureAwait(false))
        {
            try
            {
                await handler.OnConnectedAsync(connection).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Log.HandlerFailed(logger, route, connection.RemoteEndPoint, e);
            }
            finally
            {
                _live.TryRemove(connection, out _);
            }
        }
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Stops accepting, lets connections finish within the drain timeout, then aborts the rest.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        Interlocked.Exchange(ref _stopping, 1);
        foreach (var listener in _acceptLoops.Keys)
        {
            await listener.UnbindAsync(cancellationToken).ConfigureAwait(false);
        }

        var loops = Task.WhenAll(_acceptLoops.Values);
        if (await Task.WhenAny(loops, Task.Delay(shutdown.DrainTimeout, cancellationToken)).ConfigureAwait(false) != loops)
        {
            Log.Aborting(logger, _live.Count, shutdown.DrainTimeout.TotalSeconds);
            foreach (var connection in _live.Keys)
            {
                connection.Abort();
            }
        }

        await loops.ConfigureAwait(false);
    }

    private static partial class Log
    {
        [LoggerMessage(110, LogLevel.Error, "Route {Route}: connection from {Client} failed")]
        public static partial void HandlerFailed(ILogger logger, string route, EndPoint? client, Exception exception);

        [LoggerMessage(111, LogLevel.Warning, "Shutdown: {Count} connection(s) still open after the {Seconds} s drain; aborting them")]
        public static partial void Aborting(ILogger logger, int count, double seconds);
    }
}

/// <summary>How long connections may take to finish when the proxy stops or a route is removed.</summary>
internal sealed record ShutdownSettings(TimeSpan DrainTimeout);
