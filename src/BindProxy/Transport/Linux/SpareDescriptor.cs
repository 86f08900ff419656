using System.Net;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace BindProxy.Transport.Linux;

/// <summary>
/// One descriptor (<c>/dev/null</c>) held back, so that a listener whose <c>accept4</c> fails
/// with EMFILE can still take the waiting client off its queue and reset it. Otherwise the client
/// would sit in the backlog believing it is connected, and the listener could do nothing but try
/// again later.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed class SpareDescriptor : IDisposable
{
    private readonly Lock _gate = new();
    private int _fd = Open();

    /// <summary>
    /// Gives up the spare, accepts one client with it and resets that client, then takes the spare
    /// back. False when no client could be taken (the queue was empty, or the slot was taken by
    /// another thread first); <paramref name="client"/> is the refused client's address.
    /// </summary>
    public bool TryRefuseOne(SafeHandle listener, out IPEndPoint? client)
    {
        lock (_gate)
        {
            if (_fd < 0)
            {
                _fd = Open(); // lost to a race last time: try to get it back first
            }

            client = null;
            if (_fd < 0)
            {
                return false;
            }

            Libc.Close(_fd);
            _fd = -1;
            try
            {
                var accepted = RawSocket.Accept(listener, out client, out _);
                accepted?.CloseAbortive();
                return accepted is not null;
            }
            catch (ObjectDisposedException)
            {
                return false;
            }
            finally
            {
                _fd = Open();
            }
        }
    }

    private static int Open() => Libc.Open("/dev/null", Libc.ORdOnly | Libc.OCloexec);

    public void Dispose()
    {
        lock (_gate)
        {
            if (_fd >= 0)
            {
                Libc.Close(_fd);
                _fd = -1;
            }
        }
    }
}
