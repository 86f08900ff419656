namespace BindProxy.Transport;

/// <summary>
/// What a connection holds in each direction, for the stall watchdog: bytes read from one side and
/// still in the proxy, and what the kernel holds of what was sent to the other.
/// </summary>
/// <param name="HeldForUpstream">Bytes read from the client that the proxy has not handed to the upstream's socket.</param>
/// <param name="UpstreamQueue">The upstream socket's send side; null where it cannot be read.</param>
/// <param name="HeldForClient">Bytes read from the upstream that the proxy has not handed to the client's socket.</param>
/// <param name="ClientQueue">The client socket's send side; null where it cannot be read.</param>
internal readonly record struct LegsInspection(long HeldForUpstream, SendQueueInfo? UpstreamQueue, long HeldForClient, SendQueueInfo? ClientQueue);
