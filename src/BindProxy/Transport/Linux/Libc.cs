using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace BindProxy.Transport.Linux;

/// <summary>
/// The few Linux calls the relay engine makes on raw socket descriptors: epoll, an eventfd to
/// wake a loop, and non-blocking socket I/O. Constants are the x86-64/arm64 Linux values.
/// </summary>
[SupportedOSPlatform("linux")]
internal static unsafe partial class Libc
{
    public const int EpollCloexec = 0x80000;
    public const int EpollCtlAdd = 1;
    public const int EpollCtlDel = 2;
    public const int EpollCtlMod = 3;

    public const uint EpollIn = 0x001;
    public const uint EpollOut = 0x004;
    public const uint EpollErr = 0x008;
    public const uint EpollHup = 0x010;
    public const uint EpollRdHup = 0x2000;
    public const uint EpollEt = 1u << 31;

    public const int EfdCloexec = 0x80000;
    public const int EfdNonblock = 0x800;

    public const int AfInet = 2;
    public const int AfInet6 = 10;
    public const int SockStream = 1;
    public const int SockNonblock = 0x800;
    public const int SockCloexec = 0x80000;

    public const int SolSocket = 1;
    public const int SoError = 4;
    public const int SoLinger = 13;
    public const int IpProtoIp = 0;
    public const int IpBindAddressNoPort = 24;
    public const int IpProtoTcp = 6;
    public const int TcpNoDelay = 1;
    public const int TcpInfo = 11;

    public const int FSetFl = 4;
    public const int ONonblock = 0x800;
    public const int ORdOnly = 0;
    public const int OCloexec = 0x80000;

    public const uint SiocOutq = 0x5411; // TIOCOUTQ: bytes sent but not yet acknowledged, FIN included
    public const short PollOut = 0x004;

    public const int MsgPeek = 0x2;
    public const int MsgDontWait = 0x40;
    public const int MsgNoSignal = 0x4000;
    public const int ShutWr = 1;

    public const int EIntr = 4;
    public const int EBadF = 9;
    public const int EInval = 22;
    public const int ENFile = 23;
    public const int EMFile = 24;
    public const int EConnAborted = 103;
    public const int EAgain = 11;
    public const int EInProgress = 115;
    public const int EIsConn = 106;
    public const int EAlready = 114;

    /// <summary>
    /// struct epoll_event: packed (12 bytes) on x86-64, naturally aligned (16 bytes) elsewhere.
    /// </summary>
    public static readonly int EpollEventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;

    public static readonly int EpollDataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

    [LibraryImport("libc", EntryPoint = "epoll_create1", SetLastError = true)]
    public static partial int EpollCreate1(int flags);

    [LibraryImport("libc", EntryPoint = "epoll_ctl", SetLastError = true)]
    public static partial int EpollCtl(int epfd, int op, int fd, byte* ev);

    [LibraryImport("libc", EntryPoint = "epoll_wait", SetLastError = true)]
    public static partial int EpollWait(int epfd, byte* events, int maxEvents, int timeout);

    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    public static partial int EventFd(uint initial, int flags);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, void* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, void* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "recv", SetLastError = true)]
    public static partial nint Recv(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc", EntryPoint = "send", SetLastError = true)]
    public static partial nint Send(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc", EntryPoint = "shutdown", SetLastError = true)]
    public static partial int Shutdown(int fd, int how);

    [LibraryImport("libc", EntryPoint = "dup2", SetLastError = true)]
    public static partial int Dup2(int oldFd, int newFd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    // fcntl is variadic; with int arguments the x86-64 and arm64 Linux calling conventions match a fixed signature.
    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    public static partial int Fcntl(SafeHandle fd, int command, int argument);

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    public static partial int Socket(int domain, int type, int protocol);

    [LibraryImport("libc", EntryPoint = "bind", SetLastError = true)]
    public static partial int Bind(int fd, byte* address, uint length);

    [LibraryImport("libc", EntryPoint = "connect", SetLastError = true)]
    public static partial int Connect(int fd, byte* address, uint length);

    [LibraryImport("libc", EntryPoint = "accept4", SetLastError = true)]
    public static partial int Accept4(SafeHandle fd, byte* address, uint* length, int flags);

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "getsockname", SetLastError = true)]
    public static partial int GetSockName(int fd, byte* address, uint* length);

    [LibraryImport("libc", EntryPoint = "setsockopt", SetLastError = true)]
    public static partial int SetSockOpt(int fd, int level, int name, void* value, uint length);

    [LibraryImport("libc", EntryPoint = "getsockopt", SetLastError = true)]
    public static partial int GetSockOpt(int fd, int level, int name, void* value, uint* length);

    // ioctl is variadic; with a pointer argument the x86-64 and arm64 Linux calling conventions match a fixed signature.
    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(SafeHandle fd, nuint request, int* argument);

    [LibraryImport("libc", EntryPoint = "getsockopt", SetLastError = true)]
    public static partial int GetSockOpt(SafeHandle fd, int level, int name, void* value, uint* length);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(void* fds, nuint count, int timeout);

    public static int Errno => Marshal.GetLastPInvokeError();
}
