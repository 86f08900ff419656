using System.Net;
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

    /// <summary>
    /// The socket as a stream with its receive pipe, made (and receiving) on first use: what a
    /// connection whose route reads its bytes gets, whichever engine accepted it.
    /// </summary>
    PipeSocket Socket { get; }

    /// <summary>Where the client leg's bytes go for a capture from its first byte on; set before <see cref="Socket"/> is first used.</summary>
    Capture.LegTap? ClientTap { get; set; }

    /// <summary>Resets the client (RST), whichever way the socket is held.</summary>
    void Reset();

    /// <summary>
    /// Where the client was connecting when netfilter redirected it to this listener; null when
    /// the socket is no longer held here or the kernel has none (see <see cref="Interception.OriginalDestination"/>).
    /// </summary>
    IPEndPoint? OriginalDestination { get; }
}
