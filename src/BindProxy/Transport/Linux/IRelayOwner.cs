using System.Runtime.Versioning;

namespace BindProxy.Transport.Linux;

/// <summary>Hears when a <see cref="TcpRelay"/> has closed both its sockets.</summary>
[SupportedOSPlatform("linux")]
internal interface IRelayOwner
{
    /// <summary>
    /// Runs on the relay's loop thread (or on <see cref="TcpRelay.Start"/>'s, when the relay ends
    /// before it is registered): bookkeeping only, nothing that blocks.
    /// </summary>
    /// <param name="state">What the owner gave <see cref="TcpRelay.Start"/> to know the connection by.</param>
    void OnRelayClosed(TcpRelay relay, object? state, CloseReason reason);
}
