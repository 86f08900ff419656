using System.Net;
using BindProxy.Outbound;
using BindProxy.Transport;
using BindProxy.Transport.Linux;
using Microsoft.Extensions.Logging;

namespace BindProxy.Forwarding;

/// <summary>
/// The forwarding path of plain Tcp routes on Linux: one <see cref="EpollLoop"/> per core, each
/// running many <see cref="TcpRelay"/>s. Also connects upstream sockets without a .NET
/// <see cref="System.Net.Sockets.Socket"/>, so the descriptor is the loops' alone. Its relays
/// are proxied connections like any other: the drain (<see cref="DrainCoordinator"/>) lets them
/// finish and resets the rest; the loops stop when the host is disposed, after the drain.
/// </summary>
internal sealed partial class RelayEngine(TransportOptions options, ILogger<RelayEngine> logger) : IDisposable
{
    private readonly Lock _gate = new();
    private EpollLoop[]? _loops;
    private uint _next;
    private bool _disposed;

    /// <summary>False where epoll is missing (not Linux); those routes use the pipe path.</summary>
    public static bool IsSupported => OperatingSystem.IsLinux();

    /// <summary>The loop for the next connection (round-robin).</summary>
    public EpollLoop NextLoop()
    {
        var loops = _loops ?? Start();
        return loops[Interlocked.Increment(ref _next) % (uint)loops.Length];
    }

    private EpollLoop[] Start()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_loops is null)
            {
                var loops = new EpollLoop[Environment.ProcessorCount];
                for (int i = 0; i < loops.Length; i++)
                {
                    loops[i] = new EpollLoop($"BindProxy relay {i}", options.ReceiveBufferSize, e => Log.LoopError(logger, e));
                }

                _loops = loops;
            }

            return _loops;
        }
    }

    /// <summary>
    /// Connects from <paramref name="source"/> to <paramref name="destination"/>; the descriptor of
    /// the connected socket. Throws <see cref="System.Net.Sockets.SocketException"/> when the
    /// connect fails and <see cref="OperationCanceledException"/> when the deadline passes first.
    /// </summary>
    public async ValueTask<RawConnection> ConnectAsync(IPAddress source, IPEndPoint destination, ConnectDeadline deadline)
    {
        var (fd, inProgress) = RawSocket.StartConnect(source, destination);
        if (inProgress)
        {
            var waiter = new ConnectWaiter(NextLoop(), fd);
            try
            {
                await waiter.WaitAsync(deadline.Token).ConfigureAwait(false);
            }
            catch
            {
                Libc.Close(fd);
                throw;
            }
        }

        return new RawConnection(fd);
    }

    // May be called more than once; the loops are disposed once.
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            foreach (var loop in _loops ?? [])
            {
                loop.Dispose();
            }
        }
    }

    /// <summary>Waits on a loop for a non-blocking connect to finish.</summary>
    private sealed class ConnectWaiter(EpollLoop loop, int fd) : IEpollHandler
    {
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _slot = -1;

        public async Task WaitAsync(CancellationToken cancellationToken)
        {
            loop.Post(static s => ((ConnectWaiter)s!).Register(), this);
            await using (cancellationToken.UnsafeRegister(static s => ((ConnectWaiter)s!).Cancel(), this).ConfigureAwait(false))
            {
                await _done.Task.ConfigureAwait(false);
            }
        }

        private void Cancel() => loop.Post(static s => ((ConnectWaiter)s!).Complete(new OperationCanceledException()), this);

        private void Register()
        {
            if (_done.Task.IsCompleted)
            {
                return;
            }

            try
            {
                _slot = loop.Register(fd, Libc.EpollOut, this, 0);
            }
            catch (System.Net.Sockets.SocketException e)
            {
                _done.TrySetException(e);
            }
        }

        public void OnEvents(uint events, int tag)
        {
            int error = RawSocket.PendingError(fd);
            Complete(error == 0 ? null : RawSocket.Error(error));
        }

        private void Complete(Exception? error)
        {
            if (_done.Task.IsCompleted)
            {
                return;
            }

            if (_slot >= 0)
            {
                loop.Unregister(_slot, keepOpen: true);
                _slot = -1;
            }

            if (error is null)
            {
                _done.TrySetResult();
            }
            else
            {
                _done.TrySetException(error);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(120, LogLevel.Error, "Relay loop error")]
        public static partial void LoopError(ILogger logger, Exception exception);
    }
}

/// <summary>A connected upstream socket's descriptor, owned by whoever receives it.</summary>
internal sealed record RawConnection(int Fd);
