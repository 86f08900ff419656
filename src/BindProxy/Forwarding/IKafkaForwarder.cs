using BindProxy.Transport;

namespace BindProxy.Forwarding;

/// <summary>
/// The Kafka protocol as the forwarding path needs it. Kafka sits above Forwarding and implements
/// this (the host registers it), so a Kafka route's connection is accepted, assigned and connected
/// here like any other, and only its bytes go through the Kafka layer: framing, rewriting and the
/// broker listeners stay behind this seam.
/// </summary>
internal interface IKafkaForwarder
{
    /// <summary>
    /// The client.id of <paramref name="client"/>'s first request, read without consuming any of
    /// it: "" when the header carries none, null when no request header arrived within
    /// <paramref name="timeout"/>.
    /// </summary>
    Task<string?> PeekClientIdAsync(PipeSocket client, TimeSpan timeout, CancellationToken cancellationToken);

    /// <summary>
    /// Forwards <paramref name="connection"/>, a connection of a Kafka route, between its connected
    /// <paramref name="client"/> and <paramref name="upstream"/> until either side ends it; sets
    /// <see cref="ProxiedConnection.Kafka"/> before the first byte moves. Returns why it ended.
    /// </summary>
    Task<CloseReason> ForwardAsync(ProxiedConnection connection, PipeSocket client, PipeSocket upstream, CancellationToken cancellationToken);
}
