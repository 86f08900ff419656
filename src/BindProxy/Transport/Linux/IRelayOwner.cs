using System.Runtime.Versioning;

namespace BindProxy.Transport.Linux;

/// <summary>Hears when a <see cref="TcpRelay"/> has closed both its sockets, or handed them over: one or the other, once.</summary>
[SupportedOSPlatform("linux")]
internal interface IRelayOwner
{
    /// <summary>Runs once per started relay, on the thread pool (never on a loop's thread).</summary>
    /// <param name="state">What the owner gave <see cref="TcpRelay.Start"/> to know the connection by.</param>
    void OnRelayClosed(TcpRelay relay, object? state, CloseReason reason);

    /// <summary>
    /// Runs once per relay that moved (<see cref="TcpRelay.RequestMove"/>) instead of closing, on the
    /// thread pool: the owner takes <paramref name="handover"/> (both sockets, the reservation, the
    /// held bytes) and closes the sockets itself.
    /// </summary>
    void OnRelayMoved(TcpRelay relay, object? state, RelayHandover handover);
}
