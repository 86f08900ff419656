using BindProxy.Configuration;
using BindProxy.Transport;

namespace BindProxy.Forwarding;

/// <summary>
/// What a drain waits for and, when its time is up, resets: a proxied connection, or a client's
/// connection to an Http route.
/// </summary>
internal interface IDrainable
{
    /// <summary>The route it belongs to; a family is drained with its root.</summary>
    ServedRoute Served { get; }

    /// <summary>Completes when it has closed.</summary>
    Task WhenClosed();

    /// <summary>
    /// Asks it to end at its next quiet moment (an HTTP connection: after the request in hand). A
    /// plain TCP connection has no such moment the proxy could see and goes on until its peers end it.
    /// </summary>
    void RequestClose();

    /// <summary>Resets it.</summary>
    void Abort();
}
