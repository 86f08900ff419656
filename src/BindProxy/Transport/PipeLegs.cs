using System.Net;
using System.Net.Sockets;

namespace BindProxy.Transport;

/// <summary>The legs of a connection forwarded through two <see cref="PipeSocket"/>s (Kafka routes).</summary>
internal sealed class PipeLegs(PipeSocket client, PipeSocket upstream) : IConnectionLegs
{
    public IPEndPoint Client => client.RemoteEndPoint;

    public IPEndPoint Listener => client.LocalEndPoint;

    public IPEndPoint Source => upstream.LocalEndPoint;

    public IPEndPoint Upstream => upstream.RemoteEndPoint;

    /// <summary>What the client's leg negotiated when it is TLS (a <c>ListenTls</c> listener); null when it is plaintext.</summary>
    public Configuration.TlsSession? ClientTls => client.TlsSession;

    /// <summary>What the upstream leg negotiated when it is TLS (a route's <c>Tls</c>); null when it is plaintext.</summary>
    public Configuration.TlsSession? UpstreamTls => upstream.TlsSession;

    public long BytesToUpstream => upstream.BytesSent;

    public long BytesToClient => client.BytesSent;

    public long BytesReceived => client.BytesReceived + upstream.BytesReceived;

    public long BufferedBytes => HeldForUpstream + HeldForClient;

    public long HeldForUpstream => client.BytesReceived - upstream.BytesSent;

    public long HeldForClient => upstream.BytesReceived - client.BytesSent;

    public string State => (client.ReceiveEnd, upstream.ReceiveEnd) switch
    {
        _ when client.IsAborted || upstream.IsAborted => "closing",
        _ when IsFlushing => "flushing",
        (ReceiveEnd.Open, ReceiveEnd.Open) => "open",
        (ReceiveEnd.Fin, ReceiveEnd.Open) => "half-closed by client",
        (ReceiveEnd.Open, ReceiveEnd.Fin) => "half-closed by upstream",
        _ => "closing",
    };

    public bool IsFlushing => client.IsFlushing || upstream.IsFlushing;

    public long KernelQueued() => (long)client.Unacknowledged + upstream.Unacknowledged;

    public LegsInspection Inspect() => new(HeldForUpstream, upstream.InspectSendQueue(), HeldForClient, client.InspectSendQueue());

    public Capture.ConnectionTap? Tap
    {
        get;
        set
        {
            field = value;
            client.Tap = value?.ClientLeg;
            upstream.Tap = value?.UpstreamLeg;
        }
    }

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
