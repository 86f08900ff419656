using System.Net;

namespace BindProxy.Transport;

/// <summary>
/// The two sockets of a proxied connection as the registry, the sweeper and the admin API see
/// them, whichever forwarding path moves its bytes.
/// </summary>
internal interface IConnectionLegs
{
    /// <summary>The client's address and port.</summary>
    IPEndPoint Client { get; }

    /// <summary>The proxy listener the client connected to.</summary>
    IPEndPoint Listener { get; }

    /// <summary>The source address and port of the upstream connection.</summary>
    IPEndPoint Source { get; }

    IPEndPoint Upstream { get; }

    long BytesToUpstream { get; }

    long BytesToClient { get; }

    /// <summary>Bytes received from either side so far (moves whenever traffic does).</summary>
    long BytesReceived { get; }

    /// <summary>Bytes the proxy holds for this connection right now, both directions.</summary>
    long BufferedBytes { get; }

    /// <summary>Bytes read from the client that the proxy has not yet handed to the upstream's socket.</summary>
    long HeldForUpstream { get; }

    /// <summary>Bytes read from the upstream that the proxy has not yet handed to the client's socket.</summary>
    long HeldForClient { get; }

    /// <summary>open, half-closed by client or upstream, flushing (both FINs passed on, sent bytes not yet acknowledged), or closing.</summary>
    string State { get; }

    /// <summary>Both directions have ended and the connection waits for its peers to acknowledge what was sent to them.</summary>
    bool IsFlushing { get; }

    /// <summary>Bytes the kernel still holds for either peer (sent but not acknowledged); asks the kernel, so callers ask sparingly.</summary>
    long KernelQueued();

    /// <summary>What each direction holds, in the proxy and in the kernel; asks the kernel, so callers ask sparingly.</summary>
    LegsInspection Inspect();

    /// <summary>The captures' tap on both legs while one is attached; null otherwise (setting it installs it at the legs' read and write points).</summary>
    Capture.ConnectionTap? Tap { get; set; }

    /// <summary>Resets both sides.</summary>
    void Abort();

    /// <summary>
    /// The reset of a side the proxy is not reading while the other side is not taking bytes
    /// (backpressure), which would otherwise go unseen; null when there is none.
    /// </summary>
    CloseReason? ResetWhilePaused();
}
