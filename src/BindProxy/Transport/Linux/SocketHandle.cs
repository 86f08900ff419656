using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace BindProxy.Transport.Linux;

/// <summary>
/// Owns one socket descriptor of the relay engine (an accepted client, an upstream connection).
/// Whoever holds the object owns the descriptor; it is closed once — by <see cref="SafeHandle.Dispose()"/>,
/// <see cref="CloseAbortive"/> or, if an exception path forgot it, the finalizer — and never by number,
/// so a second close cannot hit another socket that reused the number.
/// </summary>
/// <remarks>
/// The number itself (<see cref="Fd"/>) is for system calls made by the owner while it holds the
/// handle; it is never handed on as the descriptor.
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed class SocketHandle : SafeHandle
{
    private int _abortive;

    public SocketHandle(int fd)
        : base(invalidHandleValue: -1, ownsHandle: true) => SetHandle(fd);

    public override bool IsInvalid => handle == -1;

    /// <summary>The descriptor's number, for the owner's own system calls.</summary>
    public int Fd => (int)handle;

    /// <summary>Closes with SO_LINGER 0, so the peer gets RST instead of FIN; once, like Dispose.</summary>
    public void CloseAbortive()
    {
        Volatile.Write(ref _abortive, 1);
        Dispose();
    }

    /// <summary>
    /// Hands the descriptor to a .NET socket handle, which owns it from then on; this object is
    /// left closed without closing it.
    /// </summary>
    public System.Net.Sockets.SafeSocketHandle ToSafeSocketHandle()
    {
        ObjectDisposedException.ThrowIf(IsClosed, this);
        var handed = new System.Net.Sockets.SafeSocketHandle(handle, ownsHandle: true);
        SetHandleAsInvalid();
        return handed;
    }

    protected override unsafe bool ReleaseHandle()
    {
        int fd = (int)handle;
        if (Volatile.Read(ref _abortive) != 0)
        {
            long linger = 1; // struct linger { int l_onoff = 1; int l_linger = 0; }
            Libc.SetSockOpt(fd, Libc.SolSocket, Libc.SoLinger, &linger, sizeof(long));
        }

        return Libc.Close(fd) == 0;
    }
}
