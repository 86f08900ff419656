using System.Net;
using System.Net.Sockets;
using BindProxy.Configuration;
using BindProxy.Outbound;
using BindProxy.Tests.Infrastructure;
using BindProxy.Transport;
using BindProxy.Transport.Linux;

namespace BindProxy.Tests.Transport;

/// <summary>
/// A loop that is stopping, or has stopped, still finishes every job posted to it: waiters
/// complete, descriptors close. Each way a loop stops is injected here.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class EpollLoopStopTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);

    [Fact]
    public void Work_posted_to_a_stopped_loop_runs_at_once_on_the_posting_thread()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        var loop = new EpollLoop("test loop", 64 * 1024, e => throw e);
        loop.Dispose();
        Assert.True(loop.IsStopped);

        Thread? ranOn = null;
        loop.Post(_ => ranOn = Thread.CurrentThread, null);
        Assert.Same(Thread.CurrentThread, ranOn);
    }

    [Fact]
    public async Task Work_queued_behind_a_busy_job_when_the_loop_is_disposed_still_runs()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        var loop = new EpollLoop("test loop", 64 * 1024, e => throw e);
        using var gate = new ManualResetEventSlim();
        var busy = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        loop.Post(_ =>
        {
            busy.SetResult();
            gate.Wait(Prompt);
        }, null);
        await busy.Task.WaitAsync(Prompt, TestContext.Current.CancellationToken);

        int ran = 0;
        for (int i = 0; i < 100; i++)
        {
            loop.Post(_ => Interlocked.Increment(ref ran), null);
        }

        var disposing = Task.Run(loop.Dispose, TestContext.Current.CancellationToken);
        await Poll.UntilAsync(() => loop.IsStopping, "Dispose to ask the loop to stop");
        gate.Set();
        await disposing.WaitAsync(Prompt, TestContext.Current.CancellationToken);

        Assert.Equal(100, Volatile.Read(ref ran));
        Assert.False(loop.Thread.IsAlive);
    }

    [Fact]
    public async Task A_loop_stuck_in_a_job_is_disposed_anyway_with_its_epoll_set_and_eventfd_closed()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        var loop = new EpollLoop("test loop", 64 * 1024, _ => { }) { StopWait = TimeSpan.FromMilliseconds(200) };
        int epoll = loop.EpollDescriptor;
        int wake = loop.WakeDescriptor;
        Assert.Equal("anon_inode:[eventpoll]", Target(epoll));
        Assert.Equal("anon_inode:[eventfd]", Target(wake));
        using var gate = new ManualResetEventSlim();
        var stuck = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        loop.Post(_ =>
        {
            stuck.SetResult();
            gate.Wait(Prompt);
        }, null);
        await stuck.Task.WaitAsync(Prompt, TestContext.Current.CancellationToken);

        loop.Dispose();

        // The epoll set and the eventfd are gone; their numbers hold /dev/null while the thread may still use them.
        Assert.Equal("/dev/null", Target(epoll));
        Assert.Equal("/dev/null", Target(wake));

        // Work posted now runs here, not behind the stuck job.
        Thread? ranOn = null;
        loop.Post(_ => ranOn = Thread.CurrentThread, null);
        Assert.Same(Thread.CurrentThread, ranOn);

        // The stuck job returns; the thread ends (and closes the placeholders on its way out).
        gate.Set();
        Assert.True(loop.Thread.Join(Prompt), "the loop thread did not end once its job returned");
    }

    [Fact]
    public async Task A_connect_waited_for_on_a_stopped_loop_fails_at_once_instead_of_waiting_forever()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        using var full = FullListener.Make();
        var engine = new RelayEngine(new TransportOptions(), Microsoft.Extensions.Logging.Abstractions.NullLogger<RelayEngine>.Instance);
        engine.NextLoop();
        engine.Dispose();

        using var client = new SocketHandle(-1);
        using var deadline = new ConnectDeadline(TimeSpan.FromMinutes(5), CancellationToken.None);
        var connect = engine.ConnectAsync(IPAddress.Loopback, full.Endpoint, deadline, client).AsTask();
        var error = await Assert.ThrowsAsync<SocketException>(() => connect.WaitAsync(Prompt, TestContext.Current.CancellationToken));
        Assert.Equal(SocketError.OperationAborted, error.SocketErrorCode);
    }

    [Fact]
    public async Task A_relay_aborted_after_its_loop_stopped_closes_both_sockets_and_tells_its_owner()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        var loop = new EpollLoop("test loop", 64 * 1024, _ => { });
        using var toClient = await LoopbackPair.ConnectAsync();
        using var toUpstream = await LoopbackPair.ConnectAsync();
        var relay = new TcpRelay(loop, toClient.DetachServer(), default, toClient.ClientEnd, toClient.ServerEnd);
        relay.Connected(toUpstream.DetachClient(), toUpstream.ClientEnd, toUpstream.ServerEnd);
        var owner = new Owner();
        relay.Start(owner, null);

        // A byte through shows the loop has registered both sockets.
        await toClient.Client.SendAsync(new byte[] { 7 });
        Assert.Equal(7, (await toUpstream.Server.ReadExactlyAsync(1, Prompt))[0]);

        loop.Dispose();
        relay.Abort();

        Assert.Equal(CloseReason.ProxyAborted, await owner.Closed.Task.WaitAsync(Prompt, TestContext.Current.CancellationToken));
        Assert.Equal(RelayState.Closed, relay.Phase);
        var reset = await Assert.ThrowsAsync<SocketException>(async () => await toClient.Client.ReadToEndAsync(Prompt));
        Assert.Equal(SocketError.ConnectionReset, reset.SocketErrorCode);
    }

    private static string Target(int fd) => new FileInfo($"/proc/self/fd/{fd}").LinkTarget ?? "";

    /// <summary>A listener whose accept queue is full, so a connect to it stays in progress (its SYN is dropped).</summary>
    private sealed class FullListener : IDisposable
    {
        private readonly Socket _listener;
        private readonly List<Socket> _queued = [];

        private FullListener(Socket listener) => _listener = listener;

        public IPEndPoint Endpoint => (IPEndPoint)_listener.LocalEndPoint!;

        public static FullListener Make()
        {
            var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(0);
            var full = new FullListener(listener);
            for (int i = 0; i < 4; i++)
            {
                var queued = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
                try
                {
                    queued.Connect(full.Endpoint);
                }
                catch (SocketException)
                {
                }

                full._queued.Add(queued);
            }

            return full;
        }

        public void Dispose()
        {
            _queued.ForEach(s => s.Dispose());
            _listener.Dispose();
        }
    }

    /// <summary>A connected loopback pair whose ends can be handed to a relay as bare descriptors.</summary>
    private sealed class LoopbackPair : IDisposable
    {
        private LoopbackPair(Socket client, Socket server)
        {
            Client = client;
            Server = server;
            ClientEnd = (IPEndPoint)client.LocalEndPoint!;
            ServerEnd = (IPEndPoint)server.LocalEndPoint!;
        }

        public Socket Client { get; }

        public Socket Server { get; }

        public IPEndPoint ClientEnd { get; }

        public IPEndPoint ServerEnd { get; }

        public static async Task<LoopbackPair> ConnectAsync()
        {
            using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen();
            var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await client.ConnectAsync(listener.LocalEndPoint!);
            return new LoopbackPair(client, await listener.AcceptAsync());
        }

        public SocketHandle DetachServer() => Detach(Server);

        public SocketHandle DetachClient() => Detach(Client);

        private static SocketHandle Detach(Socket socket)
        {
            RawSocket.SetNonBlocking(socket.SafeHandle);
            int fd = (int)socket.SafeHandle.DangerousGetHandle();
            socket.SafeHandle.SetHandleAsInvalid();
            GC.SuppressFinalize(socket);
            return new SocketHandle(fd);
        }

        public void Dispose()
        {
            if (!Client.SafeHandle.IsInvalid)
            {
                Client.Dispose();
            }

            if (!Server.SafeHandle.IsInvalid)
            {
                Server.Dispose();
            }
        }
    }

    private sealed class Owner : IRelayOwner
    {
        public TaskCompletionSource<CloseReason> Closed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void OnRelayClosed(TcpRelay relay, object? state, CloseReason reason)
        {
            if (!Closed.TrySetResult(reason))
            {
                throw new InvalidOperationException("told twice");
            }
        }

        public void OnRelayMoved(TcpRelay relay, object? state, RelayHandover handover) => throw new InvalidOperationException("a relay moved that was never asked to");
    }
}
