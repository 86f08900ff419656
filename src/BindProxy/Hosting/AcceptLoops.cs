using System.Net;
using BindProxy.Forwarding;
using BindProxy.Http;
using BindProxy.Transport;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BindProxy.Hosting;

/// <summary>
/// The one accept loop of every proxy listener, whenever it was opened: a connection on a Tcp or
/// Kafka route goes to <see cref="ProxyConnectionHandler"/> off the accepting thread (on Linux
/// that is a relay loop's), one on an Http route to Kestrel's HTTP pipeline. A loop ends when its
/// listener is closed; this service ends when every loop has and every connection it started is
/// done, which the drain sees to.
/// </summary>
internal sealed partial class AcceptLoops(ListenerHost listeners, ProxyConnectionHandler handler, HttpRouteConnections http, ILogger<AcceptLoops> logger)
    : BackgroundService
{
    private readonly TaskCompletionSource _allServed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Connections being served, plus one held by the accept loops until they have all ended.
    private int _serving = 1;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Not stoppingToken: the loops end when the listeners close (the drain closes them first),
        // and what they started is awaited below.
        var loops = new List<Task>();
        await foreach (var bound in listeners.Bound.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
        {
            loops.RemoveAll(t => t.IsCompleted);
            loops.Add(AcceptAsync(bound));
        }

        await Task.WhenAll(loops).ConfigureAwait(false);
        Served();
        await _allServed.Task.ConfigureAwait(false);
    }

    private async Task AcceptAsync(BoundListener bound)
    {
        var (route, listener, isHttp) = bound;
        await using (listener.ConfigureAwait(false))
        {
            try
            {
                while (await listener.AcceptAsync().ConfigureAwait(false) is { } connection)
                {
                    if (isHttp)
                    {
                        if (route.IsRemoved || !http.TryAccept(route, connection))
                        {
                            await HttpRouteConnections.DiscardAsync(connection).ConfigureAwait(false);
                        }

                        continue;
                    }

                    Interlocked.Increment(ref _serving);
                    ThreadPool.UnsafeQueueUserWorkItem(static s => _ = s.Loops.ServeAsync(s.Connection), (Loops: this, Connection: connection), preferLocal: false);
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // The transport gave up on this listener (it retries what may pass on its own).
                Log.AcceptFailed(logger, route.Name, listener.EndPoint, e);
            }
        }
    }

    private async Task ServeAsync(ConnectionContext connection)
    {
        try
        {
            await using (connection.ConfigureAwait(false))
            {
                await handler.OnConnectedAsync(connection).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Log.HandlerFailed(logger, connection.Features.Get<IInboundSocketFeature>()?.Route.Name ?? "", connection.RemoteEndPoint, e);
        }
        finally
        {
            Served();
        }
    }

    private void Served()
    {
        if (Interlocked.Decrement(ref _serving) == 0)
        {
            _allServed.TrySetResult();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(110, LogLevel.Error, "Route {Route}: connection from {Client} failed")]
        public static partial void HandlerFailed(ILogger logger, string route, EndPoint? client, Exception exception);

        [LoggerMessage(112, LogLevel.Error, "Route {Route}: listener {Endpoint} stopped accepting")]
        public static partial void AcceptFailed(ILogger logger, string route, EndPoint endpoint, Exception exception);
    }
}
