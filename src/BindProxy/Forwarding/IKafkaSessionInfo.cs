namespace BindProxy.Forwarding;

/// <summary>What the rest of the proxy reads of a live Kafka connection (the admin API, the sweeper, the close line).</summary>
internal interface IKafkaSessionInfo
{
    /// <summary>The client.id from the request headers, once one has been seen.</summary>
    string? ClientId { get; }

    /// <summary>Requests forwarded so far.</summary>
    long RequestCount { get; }

    /// <summary>
    /// When (<see cref="Environment.TickCount64"/>) the client left a request incomplete, or 0 when
    /// none is pending; a client that stalls mid-frame is closed after the route's FrameTimeout.
    /// </summary>
    long PartialSinceTicks { get; }
}
