namespace BindProxy.Capture;

/// <summary>
/// Where one leg's socket code reports its bytes when a capture is attached: what it received from
/// its peer and what it sent to it, each at its stream offset, and the leg's FIN and RST. Called on
/// the forwarding path, so it only hands copies to the captures' bounded queues and never waits.
/// </summary>
internal sealed class LegTap(ConnectionTap connection, CaptureLeg leg)
{
    public ConnectionTap Connection { get; } = connection;

    public CaptureLeg Leg { get; } = leg;

    /// <summary>Bytes received from the peer, the first at stream <paramref name="offset"/>; none means the peer's FIN.</summary>
    public void Received(ReadOnlySpan<byte> data, long offset) =>
        Connection.Publish(Leg, data.IsEmpty ? TapKind.Fin : TapKind.Data, fromPeer: true, offset, data, null);

    /// <summary>
    /// Bytes received from the peer at stream <paramref name="offset"/>, of which the first
    /// <paramref name="sentLength"/> were sent on unchanged to the other leg's peer at its stream
    /// <paramref name="sentOffset"/>: what <see cref="Received"/> here and <see cref="Sent"/> on the
    /// other leg say, in one report (the captures copy the bytes once for both legs).
    /// </summary>
    public void Relayed(ReadOnlySpan<byte> data, long offset, long sentOffset, int sentLength) =>
        Connection.PublishRelayed(Leg, offset, sentOffset, data, sentLength);

    /// <summary>Bytes handed to the kernel for the peer, the first at stream <paramref name="offset"/>.</summary>
    public void Sent(ReadOnlySpan<byte> data, long offset)
    {
        if (!data.IsEmpty)
        {
            Connection.Publish(Leg, TapKind.Data, fromPeer: false, offset, data, null);
        }
    }

    /// <summary>The proxy's FIN to the peer, after <paramref name="offset"/> bytes.</summary>
    public void SentFin(long offset) => Connection.Publish(Leg, TapKind.Fin, fromPeer: false, offset, default, null);

    /// <summary>A reset: the peer's (<paramref name="fromPeer"/>) or the proxy's.</summary>
    public void Reset(bool fromPeer, string? comment = null) => Connection.Publish(Leg, TapKind.Reset, fromPeer, 0, default, comment);
}
