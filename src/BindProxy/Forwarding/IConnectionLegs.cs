using System.Net;
using System.Net.Sockets;
using BindProxy.Transport;

namespace BindProxy.Forwarding;

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

    /// <summary>open, half-closed by client or upstream, or closing.</summary>
    string State { get; }

    /// <summary>Resets both sides.</summary>
    void Abort();

    /// <summary>
    /// The reset of a side the proxy is not reading while the other side is not taking bytes
    /// (backpressure), which would otherwise go unseen; null when there is none.
    /// </summary>
    CloseReason? ResetWhilePaused();
}

/// <summary>The legs of a connection forwarded through two <see cref="PipeSocket"/>s (Kafka routes).</summary>
internal sealed class PipeLegs(PipeSocket client, PipeSocket upstream) : IConnectionLegs
{
    public IPEndPoint Client => client.RemoteEndPoint;

    public IPEndPoint Listener => client.LocalEndPoint;

    public IPEndPoint Source => upstream.LocalEndPoint;

    public IPEndPoint Upstream => upstream.RemoteEndPoint;

    public long BytesToUpstream => upstream.BytesSent;

    public long BytesToClient => client.BytesSent;

    public long BytesReceived => client.BytesReceived + upstream.BytesReceived;

    public long BufferedBytes => (client.BytesReceived - upstream.BytesSent) + (upstream.BytesReceived - client.BytesSent);

    public string State => (client.ReceiveEnd, upstream.ReceiveEnd) switch
    {
        _ when client.IsAborted || upstream.IsAborted => "closing",
        (ReceiveEnd.Open, ReceiveEnd.Open) => "open",
        (ReceiveEnd.Fin, ReceiveEnd.Open) => "half-closed by client",
        (ReceiveEnd.Open, ReceiveEnd.Fin) => "half-closed by upstream",
        _ => "closing",
    };

    public void Abort()
    {
        client.Abort();
        upstream.Abort();
    }

    public CloseReason? ResetWhilePaused() =>
        client.ReceivePaused && client.PendingError() != SocketError.Success ? CloseReason.ClientReset
        : upstream.ReceivePaused && upstream.PendingError() != SocketError.Success ? CloseReason.UpstreamReset
        : null;
}
