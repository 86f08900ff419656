using System.Runtime.Versioning;

namespace BindProxy.Transport.Linux;

/// <summary>
/// What a <see cref="TcpRelay"/> gives its owner when it moves (<see cref="RelayState.Moved"/>):
/// both sockets, open and out of the loop's set, the descriptors reserved for the connection, the
/// bytes it had read and not yet sent on (to be sent before anything read later), and its counts,
/// so the way the connection goes on continues them exactly. Whoever takes it owns all of it.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed record RelayHandover(
    SocketHandle Client,
    SocketHandle Upstream,
    DescriptorReservation Reservation,
    byte[] HeldForUpstream,
    byte[] HeldForClient,
    long ClientReceived,
    long ClientSent,
    long UpstreamReceived,
    long UpstreamSent);
