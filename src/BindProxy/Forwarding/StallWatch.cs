namespace BindProxy.Forwarding;

/// <summary>What the stall watchdog last saw of one direction of a connection.</summary>
internal struct DirectionWatch
{
    /// <summary>Bytes handed to the destination's socket, and what its kernel send queue held, when last looked at.</summary>
    public long Sent;
    public long Queued;

    /// <summary>When either last changed (<see cref="Environment.TickCount64"/>).</summary>
    public long ChangedAt;
}

/// <summary>The stall watchdog's per-connection record (see <see cref="StallWatchdog"/>).</summary>
internal struct StallWatch
{
    public DirectionWatch ToUpstream;
    public DirectionWatch ToClient;
}
