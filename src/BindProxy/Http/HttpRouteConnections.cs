using System.Collections.Concurrent;
using System.Net;
using System.Threading.Channels;
using BindProxy.Configuration;
using BindProxy.Forwarding;
using BindProxy.Transport;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BindProxy.Http;

/// <summary>
/// Http routes on listeners the proxy owns. Kestrel cannot open or close one endpoint of a running
/// server, so it has a single endpoint for all Http routes (<see cref="HttpRouteEndPoint"/>), bound
/// here to a listener that accepts from a queue: each Http route listener is bound with Kestrel's
/// own socket transport, accepted by the proxy's accept loop, and every connection, tagged with its
/// route, is queued for Kestrel's HTTP pipeline. So an Http route's listeners open and close with
/// reloads as any route's do, and its client connections are known to the drain.
/// </summary>
internal sealed class HttpRouteConnections : IDrainSource, IConnectionListenerFactory, IConnectionListenerFactorySelector, IDisposable
{
    private readonly Channel<ConnectionContext> _accepted = Channel.CreateUnbounded<ConnectionContext>(new UnboundedChannelOptions { SingleWriter = false });
    private readonly ConcurrentDictionary<HttpClientConnection, byte> _open = new();
    private readonly SocketTransportFactory _sockets;

    public HttpRouteConnections(ILoggerFactory loggerFactory)
    {
        _sockets = new SocketTransportFactory(Options.Create(new SocketTransportOptions()), loggerFactory);
    }

    /// <summary>Binds a listener for an Http route's endpoint, with Kestrel's socket transport (throws as Kestrel's binding does).</summary>
    public ValueTask<IConnectionListener> ListenAsync(IPEndPoint endpoint, CancellationToken cancellationToken) =>
        _sockets.BindAsync(endpoint, cancellationToken);

    /// <summary>Hands a connection accepted on <paramref name="route"/>'s listener to Kestrel's HTTP pipeline; false once the server has stopped.</summary>
    public bool TryAccept(ServedRoute route, ConnectionContext connection)
    {
        connection.Features.Set(new HttpRouteFeature(route));
        return _accepted.Writer.TryWrite(connection);
    }

    /// <summary>Connection middleware for the Http routes' endpoint: the drain knows each client connection while Kestrel serves it.</summary>
    public ConnectionDelegate Track(ConnectionDelegate next) => async connection =>
    {
        if (connection.Features.Get<HttpRouteFeature>() is not { } feature)
        {
            await next(connection).ConfigureAwait(false);
            return;
        }

        var tracked = new HttpClientConnection(feature.Route, connection);
        _open[tracked] = 0;
        try
        {
            await next(connection).ConfigureAwait(false);
        }
        finally
        {
            _open.TryRemove(tracked, out _);
            tracked.MarkClosed();
        }
    };

    public IEnumerable<IDrainable> Open() => _open.Keys;

    public bool CanBind(EndPoint endpoint) => endpoint is HttpRouteEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default) =>
        new(new QueueListener(this, endpoint));

    public void Dispose() => _accepted.Writer.TryComplete();

    /// <summary>Resets a connection no server will serve.</summary>
    public static async ValueTask DiscardAsync(ConnectionContext connection)
    {
        connection.Abort(new ConnectionAbortedException("the proxy is stopping"));
        await connection.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Kestrel's listener for <see cref="HttpRouteEndPoint"/>: accepts what the proxy queued.</summary>
    private sealed class QueueListener(HttpRouteConnections owner, EndPoint endpoint) : IConnectionListener
    {
        public EndPoint EndPoint => endpoint;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            try
            {
                return await owner._accepted.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (ChannelClosedException)
            {
                return null;
            }
            catch (OperationCanceledException)
            {
                return null;
            }
        }

        public async ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            owner._accepted.Writer.TryComplete();
            while (owner._accepted.Reader.TryRead(out var queued))
            {
                await DiscardAsync(queued).ConfigureAwait(false);
            }
        }

        public ValueTask DisposeAsync() => UnbindAsync();
    }
}
