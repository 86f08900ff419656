using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace BindProxy.Transport;

/// <summary>A proxy route's listener: the descriptor budget, the listening socket and unbinding, whichever way it accepts.</summary>
internal abstract partial class ProxyListener : IConnectionListener
{
    private readonly ListenerContext _context;
    private int _unbound;

    protected ProxyListener(Socket socket, ListenerContext context)
    {
        ListenSocket = socket;
        _context = context;

        // The listening socket's own descriptor, for as long as it listens.
        context.Budget.Take(1);
        var address = context.Endpoint.Address;
        SpecificAddress = address.Address.Equals(IPAddress.Any) || address.Address.Equals(IPAddress.IPv6Any) ? null : address;
    }

    protected Socket ListenSocket { get; }

    protected TransportOptions Options => _context.Options;

    protected DescriptorBudget Budget => _context.Budget;

    // Bound to one address (not a wildcard): every accepted socket's local end is this one.
    protected IPEndPoint? SpecificAddress { get; }

    public EndPoint EndPoint => _context.Endpoint;

    protected RouteEndPoint Route => _context.Endpoint;

    public abstract ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Takes the descriptors a new connection needs; when they are not there, the refusal is
    /// counted and the caller resets the client and goes on to the next one.
    /// </summary>
    protected bool TryReserve(IPEndPoint? client, out DescriptorReservation reservation)
    {
        if (Budget.TryTake(DescriptorBudget.PerConnection))
        {
            reservation = new DescriptorReservation(Budget, DescriptorBudget.PerConnection);
            return true;
        }

        Budget.Refuse(Route.Route.Name, client);
        reservation = default;
        return false;
    }

    /// <summary>After a failure that may pass (out of buffers or memory): keep the listener, wait a moment.</summary>
    protected async ValueTask BackOffAsync(SocketError error, string message, CancellationToken cancellationToken)
    {
        Log.AcceptFailed(_context.Logger, Route.Route.Name, Route.Address, error, message);
        await Task.Delay(100, cancellationToken).ConfigureAwait(false);
    }

    public virtual ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        ListenSocket.Dispose();
        _context.Registry.Remove(Route);
        if (Interlocked.Exchange(ref _unbound, 1) == 0)
        {
            Budget.Return(1);
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync() => UnbindAsync();

    private static partial class Log
    {
        [LoggerMessage(101, LogLevel.Warning, "Route {Route} on {Endpoint}: accept failed ({Error}: {Message}); retrying")]
        public static partial void AcceptFailed(ILogger logger, string route, IPEndPoint endpoint, SocketError error, string message);
    }
}
