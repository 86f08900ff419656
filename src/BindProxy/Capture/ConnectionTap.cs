using System.Diagnostics;
using System.Net;

namespace BindProxy.Capture;

/// <summary>
/// The captures attached to one proxied connection, and its two legs' taps. A connection carries
/// one only while a capture may want it; without one, its socket code tests a null field and
/// goes on.
/// </summary>
internal sealed class ConnectionTap
{
    private CaptureSession[] _sessions = [];

    /// <param name="fromStart">Made before the connection moved any byte, so its streams are captured from offset 0.</param>
    public ConnectionTap(string route, IPEndPoint client, IPEndPoint listener, bool fromStart)
    {
        Route = route;
        Client = client;
        Listener = listener;
        FromStart = fromStart;
        ClientLeg = new LegTap(this, CaptureLeg.Client);
        UpstreamLeg = new LegTap(this, CaptureLeg.Upstream);
    }

    public string Route { get; }

    public IPEndPoint Client { get; }

    public IPEndPoint Listener { get; }

    /// <summary>The upstream leg's source and destination, once connected.</summary>
    public IPEndPoint? Source { get; private set; }

    public IPEndPoint? Upstream { get; private set; }

    public bool FromStart { get; }

    public LegTap ClientLeg { get; }

    /// <summary>
    /// Set before the connection's bytes move when each leg's received bytes are sent on unchanged,
    /// at the same stream offset, to the other leg (plain forwarding; not Kafka, which rewrites, nor
    /// faults): the pipe path then reports a receipt once for both legs, and its sends not at all.
    /// </summary>
    public bool ForwardsUnchanged { get; set; }

    public LegTap UpstreamLeg { get; }

    /// <summary>
    /// Set when a leg is TLS: the capture holds the plaintext the proxy sent and received on it, and
    /// says so in the comment of the leg's first packet, with what was negotiated.
    /// </summary>
    public void Decrypted(CaptureLeg leg, string what)
    {
        if (leg == CaptureLeg.Client)
        {
            Volatile.Write(ref _clientTls, what);
        }
        else
        {
            Volatile.Write(ref _upstreamTls, what);
        }
    }

    /// <summary>What <see cref="Decrypted"/> said of <paramref name="leg"/>; null when it is plaintext on the wire too.</summary>
    public string? TlsOf(CaptureLeg leg) => leg == CaptureLeg.Client ? Volatile.Read(ref _clientTls) : Volatile.Read(ref _upstreamTls);

    private string? _clientTls;
    private string? _upstreamTls;

    /// <summary>The connection as the layers above know it (what selectors look at); null until it is registered.</summary>
    public object? Subject { get => Volatile.Read(ref _subject); set => Volatile.Write(ref _subject, value); }

    private object? _subject;

    /// <summary>Called when the last capture lets go, to take the tap off the connection.</summary>
    public Action<ConnectionTap>? Uninstall { get; set; }

    public bool HasSessions => Volatile.Read(ref _sessions).Length > 0;

    public LegTap For(CaptureLeg leg) => leg == CaptureLeg.Client ? ClientLeg : UpstreamLeg;

    public void Connected(IPEndPoint source, IPEndPoint upstream)
    {
        Source = source;
        Upstream = upstream;
    }

    /// <summary>Adds a capture (callers serialise attach and detach).</summary>
    /// <param name="fromStart">
    /// The capture is attached as the tap is made, so it has what the tap has; false when the tap
    /// may have reported bytes already (to other captures): this one then has its streams from now on.
    /// </param>
    public void Attach(CaptureSession session, bool fromStart = true)
    {
        var sessions = Volatile.Read(ref _sessions);
        if (!sessions.Contains(session))
        {
            Volatile.Write(ref _sessions, [.. sessions, session]);
            session.Attached(this, fromStart && FromStart);
        }
    }

    /// <summary>Removes a capture; true when none is left.</summary>
    public bool Detach(CaptureSession session)
    {
        var sessions = Volatile.Read(ref _sessions);
        var left = sessions.Where(s => s != session).ToArray();
        Volatile.Write(ref _sessions, left);
        return left.Length == 0;
    }

    /// <summary>A proxy event (a fault injected, a reset by the proxy) as a comment in every capture of this connection.</summary>
    public void Comment(string text, CaptureLeg leg = CaptureLeg.Client) => Publish(leg, TapKind.Comment, fromPeer: false, 0, default, text);

    internal void PublishRelayed(CaptureLeg leg, long offset, long sentOffset, ReadOnlySpan<byte> data, int sentLength)
    {
        var sessions = Volatile.Read(ref _sessions);
        if (sessions.Length == 0)
        {
            return;
        }

        long now = Stopwatch.GetTimestamp();
        foreach (var session in sessions)
        {
            session.OfferRelayed(this, leg, offset, sentOffset, data, sentLength, now);
        }
    }

    internal void Publish(CaptureLeg leg, TapKind kind, bool fromPeer, long offset, ReadOnlySpan<byte> data, string? comment)
    {
        var sessions = Volatile.Read(ref _sessions);
        if (sessions.Length == 0)
        {
            return;
        }

        long now = Stopwatch.GetTimestamp();
        foreach (var session in sessions)
        {
            session.Offer(this, leg, kind, fromPeer, offset, data, now, comment);
        }
    }
}
