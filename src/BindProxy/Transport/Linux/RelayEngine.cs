using System.Net;
using System.Runtime.Versioning;
using BindProxy.Outbound;
using Microsoft.Extensions.Logging;

namespace BindProxy.Transport.Linux;

/// <summary>
/// The forwarding path of plain Tcp routes on Linux: one <see cref="EpollLoop"/> per core, each
/// running many <see cref="TcpRelay"/>s. Also connects upstream sockets without a .NET
/// <see cref="System.Net.Sockets.Socket"/>, so the descriptor is the loops' alone. Its relays
/// are proxied connections like any other: the drain lets them
/// finish and resets the rest; the loops stop when the host is disposed, after the drain. A loop
/// whose <c>epoll_wait</c> fails closes its relays and is taken out of rotation; with no loop
/// left the process exits with <see cref="ExitNoRelayLoop"/>.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed partial class RelayEngine(TransportOptions options, ILogger<RelayEngine> logger) : IDisposable
{
    /// <summary>Exit code when every relay loop has failed (EX_SOFTWARE: an internal error).</summary>
    public const int ExitNoRelayLoop = 70;

    private readonly Lock _gate = new();
    private EpollLoop[]? _loops;
    private uint _next;
    private bool _disposed;

    /// <summary>Ends the process when no loop is left; tests replace it.</summary>
    internal Action<int> ExitProcess { get; set; } = Environment.Exit;

    /// <summary>The loops, for tests (started on first use).</summary>
    internal IReadOnlyList<EpollLoop> Loops => _loops ?? Start();

    /// <summary>
    /// The loop for the next connection (round-robin over the loops still running). Throws
    /// <see cref="InvalidOperationException"/> when every loop has failed (the process is exiting then).
    /// </summary>
    public EpollLoop NextLoop()
    {
        var loops = _loops ?? Start();
        for (int tried = 0; tried < loops.Length; tried++)
        {
            var loop = loops[Interlocked.Increment(ref _next) % (uint)loops.Length];
            if (!loop.IsFailed)
            {
                return loop;
            }
        }

        throw new InvalidOperationException("every relay loop has failed");
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
                    loops[i] = new EpollLoop($"BindProxy relay {i}", options.ReceiveBufferSize, e => Log.HandlerFailed(logger, e), OnLoopFailed);
                }

                _loops = loops;
            }

            return _loops;
        }
    }

    /// <summary>Runs on the failed loop's thread, after its relays were closed.</summary>
    private void OnLoopFailed(EpollLoop loop, Exception error)
    {
        var loops = _loops!;
        int left = loops.Count(l => !l.IsFailed);
        Log.LoopFailed(logger, loop.Name, error.Message, left, loops.Length);
        if (left == 0)
        {
            Log.NoLoopLeft(logger, ExitNoRelayLoop);

            // Not on the loop's own thread: exiting stops the host, which waits for the loops.
            var exit = ExitProcess;
            ThreadPool.UnsafeQueueUserWorkItem(_ => exit(ExitNoRelayLoop), null);
        }
    }

    /// <summary>
    /// Connects from <paramref name="source"/> to <paramref name="destination"/>; the connected
    /// socket, owned by the caller. Throws <see cref="System.Net.Sockets.SocketException"/> when the
    /// connect fails and <see cref="OperationCanceledException"/> when the deadline passes first, or
    /// when <paramref name="client"/> leaves meanwhile (then the deadline is
    /// <see cref="ConnectDeadline.Abandon">abandoned</see>): a FIN with nothing sent before it, or a
    /// reset. Nothing is left open then.
    /// </summary>
    public async ValueTask<SocketHandle> ConnectAsync(IPAddress source, IPEndPoint destination, ConnectDeadline deadline, SocketHandle client)
    {
        var (socket, inProgress) = RawSocket.StartConnect(source, destination);
        if (inProgress)
        {
            try
            {
                var waiter = new ConnectWaiter(NextLoop(), socket, client, deadline);
                await waiter.WaitAsync(deadline.Token).ConfigureAwait(false);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        return socket;
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

    /// <summary>
    /// Waits on a loop for a non-blocking connect to finish, watching the client meanwhile: one that
    /// leaves (a FIN with nothing sent before it, or a reset) ends the wait at once.
    /// </summary>
    private sealed class ConnectWaiter(EpollLoop loop, SocketHandle upstream, SocketHandle client, ConnectDeadline deadline) : IEpollHandler
    {
        private const int UpstreamTag = 0;
        private const int ClientTag = 1;

        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _upstreamSlot = -1;
        private int _clientSlot = -1;

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
                _upstreamSlot = loop.Register(upstream, Libc.EpollOut, this, UpstreamTag);

                // EPOLLERR and EPOLLHUP come unasked; EPOLLRDHUP is the FIN. A client that left
                // before this is reported at once: epoll reports what is already true when it adds.
                _clientSlot = loop.Register(client, Libc.EpollRdHup, this, ClientTag);
            }
            catch (Exception e) when (e is System.Net.Sockets.SocketException or ObjectDisposedException)
            {
                Complete(e as System.Net.Sockets.SocketException ?? LoopGone());
            }
        }

        public void OnEvents(uint events, int tag)
        {
            if (tag == ClientTag)
            {
                // Bytes the client sent before its FIN still want their answer: only a client that
                // sent nothing, or reset, has left.
                if (RawSocket.Peek(client) != PeerState.Open)
                {
                    deadline.Abandon();
                    Complete(new OperationCanceledException());
                }

                return;
            }

            int error = RawSocket.PendingError(upstream);
            Complete(error == 0 ? null : RawSocket.Error(error));
        }

        public void OnLoopFailure(Exception error) => Complete(LoopGone());

        private static System.Net.Sockets.SocketException LoopGone() => new((int)System.Net.Sockets.SocketError.OperationAborted, "the relay loop failed");

        private void Complete(Exception? error)
        {
            if (_done.Task.IsCompleted)
            {
                return;
            }

            // Out of the loop's set before the caller goes on: the client's socket goes to a relay next.
            if (_upstreamSlot >= 0)
            {
                loop.Unregister(_upstreamSlot, keepOpen: true);
                _upstreamSlot = -1;
            }

            if (_clientSlot >= 0)
            {
                loop.Unregister(_clientSlot, keepOpen: true);
                _clientSlot = -1;
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
        [LoggerMessage(120, LogLevel.Error, "Relay loop: a connection failed; it is closed (internal error)")]
        public static partial void HandlerFailed(ILogger logger, Exception exception);

        [LoggerMessage(122, LogLevel.Critical, "{Loop} cannot wait for events any more ({Error}): its connections were closed (internal error) and it takes no new ones; {Left} of {Total} relay loop(s) left")]
        public static partial void LoopFailed(ILogger logger, string loop, string error, int left, int total);

        [LoggerMessage(123, LogLevel.Critical, "No relay loop is left to forward connections; exiting with code {ExitCode}")]
        public static partial void NoLoopLeft(ILogger logger, int exitCode);
    }
}
