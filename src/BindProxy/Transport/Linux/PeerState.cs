using System.Runtime.Versioning;

namespace BindProxy.Transport.Linux;

/// <summary>What a socket shows of its peer without reading anything away (<see cref="RawSocket.Peek"/>).</summary>
[SupportedOSPlatform("linux")]
internal enum PeerState
{
    /// <summary>Connected; bytes may be waiting.</summary>
    Open,

    /// <summary>The peer sent FIN and nothing before it is left unread.</summary>
    Closed,

    /// <summary>The connection was reset (or failed otherwise).</summary>
    Reset,
}
