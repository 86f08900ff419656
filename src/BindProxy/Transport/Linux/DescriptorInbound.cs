using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Runtime.Versioning;
using BindProxy.Configuration;

namespace BindProxy.Transport.Linux;

/// <summary>
/// A connection the relay engine's listener accepted: a bare non-blocking descriptor, which the
/// relay engine's forwarder takes as it is (<see cref="TryDetach"/>). Made into a .NET socket only
/// if its route reads its bytes as a stream (<see cref="InboundConnection.Socket"/>).
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed class DescriptorInbound : InboundConnection
{
    private readonly SocketHandle _handle;

    /// <param name="socket">A non-blocking accepted socket, owned from here on.</param>
    /// <param name="listener">The listener's own address when it is a specific one (then every accepted socket has it).</param>
    /// <param name="reservation">Descriptors taken for this connection, given back once its sockets are closed.</param>
    public DescriptorInbound(SocketHandle socket, IPEndPoint client, ServedRoute route, IPEndPoint? listener, TransportOptions options, DescriptorReservation reservation)
        : base(route, client, listener ?? RawSocket.LocalEndPoint(socket), options, reservation)
    {
        _handle = socket;
    }

    /// <summary>
    /// Hands the non-blocking socket to the caller, who then owns it and the descriptors reserved
    /// for the connection; false once it is no longer held here (made into a stream, reset or disposed).
    /// </summary>
    public bool TryDetach([NotNullWhen(true)] out SocketHandle? socket, out DescriptorReservation reservation)
    {
        socket = null;
        reservation = default;
        if (!Release())
        {
            return false;
        }

        socket = _handle;
        reservation = TakeReservation();
        return true;
    }

    protected override System.Net.Sockets.Socket TakeSocket() => new(_handle.ToSafeSocketHandle());

    protected override IPEndPoint? OriginalDestinationOfHeld() => Interception.OriginalDestination.Read(_handle.Fd, Listener.AddressFamily);

    protected override void ResetHeld() => _handle.CloseAbortive();

    protected override void DisposeHeld() => _handle.Dispose();
}
