using System.Net.Sockets;
using System.Runtime.Versioning;

namespace BindProxy.Transport.Linux;

/// <summary>
/// The relay engine's listeners: watched by a relay loop, accepting bare descriptors
/// (<see cref="DescriptorInbound"/>), with one spare descriptor shared by all of them to refuse a
/// client when the process is out of descriptors.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed class RelayEngineListeners(RelayEngine relays) : IEngineListeners, IDisposable
{
    private readonly SpareDescriptor _spare = new();

    public ProxyListener Listen(Socket socket, ListenerContext context) => new EpollListener(socket, context, relays, _spare);

    public void Dispose() => _spare.Dispose();
}
