using System.Net.Sockets;

namespace BindProxy.Transport;

/// <summary>
/// How the forwarding engine's listeners accept: the one thing <see cref="RouteListenerFactory"/>
/// asks of the engine. Each hands out connections of its own engine's form
/// (<see cref="InboundConnection"/>).
/// </summary>
internal interface IEngineListeners
{
    /// <summary>A listener accepting on <paramref name="socket"/>, which is bound and listening; it owns the socket from here on.</summary>
    ProxyListener Listen(Socket socket, ListenerContext context);
}

/// <summary>The pipe engine's listeners: accepted .NET sockets (<see cref="SocketInbound"/>).</summary>
internal sealed class SocketEngineListeners : IEngineListeners
{
    public ProxyListener Listen(Socket socket, ListenerContext context) => new SocketListener(socket, context);
}
