using System.Runtime.Versioning;

namespace BindProxy.Transport.Linux;

/// <summary>Hears when a <see cref="TcpRelay"/> has closed both its sockets.</summary>
[SupportedOSPlatform("linux")]
internal interface IRelayOwner
{
    /// <summary>Runs once per started relay, on the thread pool (never on a loop's thread).</summary>
    /// <param name="state">What the owner gave <see cref="TcpRelay.Start"/> to know the connection by.</param>
    void OnRelayClosed(TcpRelay relay, object? state, CloseReason reason);
}
