using System.Net;
using System.Runtime.Versioning;
using BindProxy.Configuration;

namespace BindProxy.Transport;

/// <summary>Gives a connection handler the accepted socket and the route it arrived on.</summary>
internal interface IInboundSocketFeature
{
    /// <summary>The route whose listener accepted the connection.</summary>
    ServedRoute Route { get; }

    /// <summary>The client's address and port.</summary>
    IPEndPoint Client { get; }

    /// <summary>The listener's address and port.</summary>
    IPEndPoint Listener { get; }

    /// <summary>The socket with its receive pipe, made (and receiving) on first use.</summary>
    PipeSocket Socket { get; }

    /// <summary>
    /// Hands the non-blocking socket to the caller, who then owns it and the descriptors reserved
    /// for the connection, if the connection was accepted as a bare descriptor (Linux) and not yet
    /// used through <see cref="Socket"/>; false otherwise.
    /// </summary>
    [SupportedOSPlatform("linux")]
    bool TryDetach([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Linux.SocketHandle? socket, out DescriptorReservation reservation);

    /// <summary>Resets the client (RST), whichever way the socket is held.</summary>
    void Reset();

    /// <summary>
    /// Where the client was connecting when netfilter redirected it to this listener; null when
    /// the socket is no longer held here or the kernel has none (see <see cref="Interception.OriginalDestination"/>).
    /// </summary>
    IPEndPoint? OriginalDestination { get; }
}
