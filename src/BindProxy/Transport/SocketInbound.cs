using System.Net;
using System.Net.Sockets;
using BindProxy.Configuration;

namespace BindProxy.Transport;

/// <summary>A connection the pipe engine's listener accepted: a .NET socket.</summary>
internal sealed class SocketInbound : InboundConnection
{
    private readonly Socket _accepted;

    /// <param name="listener">The listener's own address when it is a specific one (then every accepted socket has it).</param>
    /// <param name="reservation">Descriptors taken for this connection, given back once its sockets are closed.</param>
    public SocketInbound(Socket accepted, ServedRoute route, IPEndPoint? listener, TransportOptions options, DescriptorReservation reservation)
        : base(route, (IPEndPoint)accepted.RemoteEndPoint!, listener ?? (IPEndPoint)accepted.LocalEndPoint!, options, reservation)
    {
        _accepted = accepted;
    }

    protected override Socket TakeSocket() => _accepted;

    protected override IPEndPoint? OriginalDestinationOfHeld() => Interception.OriginalDestination.Read(_accepted);

    protected override void ResetHeld()
    {
        try
        {
            _accepted.LingerState = new LingerOption(true, 0);
        }
        catch (SocketException)
        {
        }

        _accepted.Dispose();
    }

    protected override void DisposeHeld() => _accepted.Dispose();
}
