namespace BindProxy.Capture;

/// <summary>One of a proxied connection's two TCP connections.</summary>
internal enum CaptureLeg
{
    /// <summary>Client ↔ the proxy's listener.</summary>
    Client = 0,

    /// <summary>The proxy's source address ↔ the upstream.</summary>
    Upstream = 1,
}

/// <summary>Which legs a capture writes.</summary>
[Flags]
internal enum CaptureLegs
{
    Client = 1,
    Upstream = 2,
    Both = Client | Upstream,
}

/// <summary>What a capture makes of a connection it may want.</summary>
internal enum CaptureMatch
{
    /// <summary>Not known yet (a Kafka client.id before the first request); its packets are held until it is.</summary>
    Later,
    Yes,
    No,
}

internal enum TapKind : byte
{
    Data,
    Fin,
    Reset,
    Comment,

    /// <summary>
    /// Bytes received on <see cref="TapEvent.Leg"/> and sent on unchanged to the other leg: one copy
    /// for both legs' packets (the first <see cref="TapEvent.SentLength"/> of them sent, at <see cref="TapEvent.SentOffset"/>).
    /// </summary>
    Relayed,
}

/// <summary>One thing a tap saw, queued for a capture: a copy of the bytes (pooled) or a FIN, RST or comment.</summary>
internal readonly record struct TapEvent(
    ConnectionTap Tap,
    CaptureLeg Leg,
    TapKind Kind,
    bool FromPeer,
    long Offset,
    byte[]? Buffer,
    int Length,
    long Timestamp,
    string? Comment,
    long SentOffset = 0,
    int SentLength = 0);
