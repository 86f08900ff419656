using System.Runtime.Versioning;

namespace BindProxy.Transport.Linux;

/// <summary>
/// Where a <see cref="TcpRelay"/> is in its life. It only ever moves forward, along these arrows:
/// <code>
/// Connecting ──Start──► Relaying ──one side's FIN──► HalfClosed ──the other's──► Closing ──sent bytes acknowledged──► Closed
///     │                    │  │                         │                           │
///     └──Discard───────────┴──┼────reset, error, abort──┴───────────────────────────┴──(flush timeout: abort)──► Closed
///                             └──Move──► Moved
/// </code>
/// Closed and Moved are the two ends: the owner hears exactly one of them.
/// </summary>
[SupportedOSPlatform("linux")]
internal enum RelayState
{
    /// <summary>Holds the client's socket while its forwarder connects upstream; the forwarder's thread alone touches it.</summary>
    Connecting,

    /// <summary>Both sockets registered with the loop; bytes flow both ways.</summary>
    Relaying,

    /// <summary>One side's FIN has been passed on; the other direction still flows.</summary>
    HalfClosed,

    /// <summary>Both FINs passed on; waiting until each peer has acknowledged everything sent to it.</summary>
    Closing,

    /// <summary>Both descriptors closed, the owner told.</summary>
    Closed,

    /// <summary>
    /// Both descriptors taken out of the loop's set, still open, and handed with the bytes the relay
    /// held and its counts to the owner, who forwards the connection another way (the pipe path)
    /// and closes them; the relay touches neither again.
    /// </summary>
    Moved,
}

[SupportedOSPlatform("linux")]
internal static class RelayStates
{
    /// <summary>The arrows of <see cref="RelayState"/>.</summary>
    public static bool CanMove(RelayState from, RelayState to) => (from, to) switch
    {
        (RelayState.Connecting, RelayState.Relaying or RelayState.Closed) => true,
        (RelayState.Relaying, RelayState.HalfClosed or RelayState.Closed or RelayState.Moved) => true,
        (RelayState.HalfClosed, RelayState.Closing or RelayState.Closed) => true,
        (RelayState.Closing, RelayState.Closed) => true,
        _ => false,
    };
}
