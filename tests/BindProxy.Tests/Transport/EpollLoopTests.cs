using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using BindProxy.Configuration;
using BindProxy.Forwarding;
using BindProxy.Transport;
using BindProxy.Transport.Linux;

namespace BindProxy.Tests.Transport;

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class EpollLoopTests
{
    [Fact]
    public async Task Work_that_keeps_posting_itself_lets_ready_sockets_run_in_between()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        using var loop = new EpollLoop("test loop", 64 * 1024, e => throw e);
        using var pair = await SocketPair.ConnectAsync();

        var handler = new Recorder();
        int slot = loop.Register(pair.Server.SafeHandle, Libc.EpollIn, handler, 0);
        const int Steps = 1000;
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        // Like an accept burst re-posting its wake-up: the socket becomes readable during step 1.
        Action<object?>? step = null;
        step = _ =>
        {
            if (++handler.Step == 1)
            {
                pair.Client.Send([1]);
            }

            if (handler.Step < Steps)
            {
                loop.Post(step!, null);
            }
            else
            {
                done.SetResult();
            }
        };
        loop.Post(step, null);
        await done.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        loop.Post(_ => loop.Unregister(slot, keepOpen: true), null);

        Assert.InRange(handler.ReadyAtStep, 1, 10);
    }

    [Fact]
    public async Task Work_posted_from_many_threads_while_the_loop_drains_never_waits_for_a_later_post()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        using var loop = new EpollLoop("test loop", 64 * 1024, e => throw e);
        const int Threads = 8;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(4);
        int posts = 0;
        string? stuck = null;

        // Each thread posts one item and waits for it to run before it posts the next, so an item
        // whose wake-up was lost is found: nobody else may post for a while (every thread can be
        // waiting at once), and the wait times out instead of being rescued.
        var threads = Enumerable.Range(0, Threads).Select(t => new Thread(() =>
        {
            using var ran = new ManualResetEventSlim();
            while (DateTime.UtcNow < deadline && Volatile.Read(ref stuck) is null)
            {
                ran.Reset();
                loop.Post(static s => ((ManualResetEventSlim)s!).Set(), ran);
                Interlocked.Increment(ref posts);
                if (!ran.Wait(TimeSpan.FromSeconds(2)))
                {
                    Interlocked.CompareExchange(ref stuck, $"thread {t}: a post did not run within 2 s (after {Volatile.Read(ref posts)} posts)", null);
                }
            }
        }) { IsBackground = true }).ToList();
        threads.ForEach(t => t.Start());
        foreach (var thread in threads)
        {
            Assert.True(thread.Join(TimeSpan.FromSeconds(30)), "a posting thread did not finish");
        }

        await Task.CompletedTask;
        Assert.Null(stuck);
        Assert.True(posts > 10_000, $"only {posts} posts ran");
    }

    [Fact]
    public async Task A_handler_that_keeps_asking_for_turns_lets_a_socket_that_becomes_ready_run()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        using var loop = new EpollLoop("test loop", 64 * 1024, e => throw e);
        using var pair = await SocketPair.ConnectAsync();

        // A handler that always has more to do, as a relay with a bulk stream has.
        var busy = new Busy(loop);
        loop.Post(static s => ((Busy)s!).Loop.Reschedule((Busy)s!, 0), busy);
        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref busy.Turns) > 100, TimeSpan.FromSeconds(5)));

        var ready = new Recorder();
        int slot = loop.Register(pair.Server.SafeHandle, Libc.EpollIn, ready, 0);
        int before = Volatile.Read(ref busy.Turns);
        pair.Client.Send([1]);
        Assert.True(SpinWait.SpinUntil(() => ready.Events > 0, TimeSpan.FromSeconds(5)), "the ready socket never got a turn");

        loop.Post(_ => { busy.Stop = true; loop.Unregister(slot, keepOpen: true); }, null);
        Assert.True(Volatile.Read(ref busy.Turns) > before, "the busy handler stopped getting turns");
    }

    [Fact]
    public async Task A_handler_that_throws_is_failed_and_the_loop_goes_on_with_the_others()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        var errors = new List<Exception>();
        using var loop = new EpollLoop("test loop", 64 * 1024, e => { lock (errors) { errors.Add(e); } });
        using var first = await SocketPair.ConnectAsync();
        using var second = await SocketPair.ConnectAsync();

        var throwing = new Recorder { Throw = new InvalidOperationException("handler bug") };
        var healthy = new Recorder();
        loop.Register(first.Server.SafeHandle, Libc.EpollIn, throwing, 0);
        int slot = loop.Register(second.Server.SafeHandle, Libc.EpollIn, healthy, 0);
        first.Client.Send([1]);
        Assert.True(SpinWait.SpinUntil(() => throwing.Failure is not null, TimeSpan.FromSeconds(5)), "the throwing handler was not failed");
        Assert.Same(throwing.Throw, throwing.Failure);

        // Posted work that throws fails the handler it was posted for.
        var posted = new Recorder();
        loop.Post(static _ => throw new InvalidOperationException("posted bug"), posted);
        Assert.True(SpinWait.SpinUntil(() => posted.Failure is not null, TimeSpan.FromSeconds(5)), "the posted work's handler was not failed");

        second.Client.Send([2]);
        Assert.True(SpinWait.SpinUntil(() => healthy.Events > 0, TimeSpan.FromSeconds(5)), "the loop stopped after a handler threw");
        Assert.Null(healthy.Failure);
        Assert.False(loop.IsFailed);
        lock (errors)
        {
            Assert.Equal(2, errors.Count);
        }

        loop.Post(_ => loop.Unregister(slot, keepOpen: true), null);
        await Task.CompletedTask;
    }

    [Fact]
    public async Task A_loop_whose_epoll_wait_fails_fails_its_handlers_says_so_once_and_runs_posted_work_only()
    {
        Assert.SkipUnless(BindProxy.Configuration.EngineSettings.RelayRuns, "the relay engine runs on Linux only");
        var failed = new TaskCompletionSource<Exception>(TaskCreationOptions.RunContinuationsAsynchronously);
        int told = 0;
        using var loop = new EpollLoop("test loop", 64 * 1024, _ => { }, (_, e) =>
        {
            Interlocked.Increment(ref told);
            failed.TrySetResult(e);
        });
        using var pair = await SocketPair.ConnectAsync();
        var handler = new Recorder();
        loop.Register(pair.Server.SafeHandle, Libc.EpollIn, handler, 0);

        BreakEpoll(loop);

        var error = await failed.Task.WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);
        Assert.Contains("Invalid argument", Assert.IsType<SocketException>(error).Message, StringComparison.Ordinal); // EINVAL: not an epoll descriptor
        Assert.True(loop.IsFailed);
        Assert.Same(error, handler.Failure);
        Assert.Throws<ObjectDisposedException>(() => loop.Register(pair.Client.SafeHandle, Libc.EpollIn, new Recorder(), 0));

        // Handlers still finishing post their last work; it runs.
        var ran = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        loop.Post(static s => ((TaskCompletionSource)s!).SetResult(), ran);
        await ran.Task.WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);
        Assert.Equal(1, Volatile.Read(ref told));
    }

    /// <summary>
    /// Puts /dev/null in the place of the loop's epoll descriptor (dup2 replaces it atomically), so
    /// the loop's next <c>epoll_wait</c> fails with EINVAL; then wakes the loop so it makes that call.
    /// The loop's Dispose closes the number, which then holds the /dev/null copy.
    /// </summary>
    internal static void BreakEpoll(EpollLoop loop)
    {
        using var devNull = File.OpenHandle("/dev/null");
        Assert.True(Dup2((int)devNull.DangerousGetHandle(), loop.EpollDescriptor) >= 0, "dup2 failed");
        loop.Post(static _ => { }, null);
    }

    // DllImport: LibraryImport would need unsafe code in the test project for this one call.
#pragma warning disable SYSLIB1054
    [DllImport("libc", EntryPoint = "dup2", SetLastError = true)]
    private static extern int Dup2(int oldFd, int newFd);
#pragma warning restore SYSLIB1054

    /// <summary>A connected loopback pair.</summary>
    private sealed class SocketPair : IDisposable
    {
        private SocketPair(Socket client, Socket server) => (Client, Server) = (client, server);

        public Socket Client { get; }

        public Socket Server { get; }

        public static async Task<SocketPair> ConnectAsync()
        {
            using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen();
            var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await client.ConnectAsync(listener.LocalEndPoint!, TestContext.Current.CancellationToken);
            return new SocketPair(client, await listener.AcceptAsync(TestContext.Current.CancellationToken));
        }

        public void Dispose()
        {
            Client.Dispose();
            Server.Dispose();
        }
    }

    private sealed class Recorder : IEpollHandler
    {
        public int Step;
        public int Events;

        public int ReadyAtStep { get; private set; } = -1;

        public Exception? Throw { get; init; }

        public Exception? Failure { get; private set; }

        public void OnEvents(uint events, int tag)
        {
            if (ReadyAtStep < 0)
            {
                ReadyAtStep = Step;
            }

            Interlocked.Increment(ref Events);
            if (Throw is not null)
            {
                throw Throw;
            }
        }

        public void OnLoopFailure(Exception error) => Failure = error;
    }

    private sealed class Busy(EpollLoop loop) : IEpollHandler
    {
        public int Turns;
        public volatile bool Stop;

        public EpollLoop Loop => loop;

        public void OnEvents(uint events, int tag)
        {
            Interlocked.Increment(ref Turns);
            if (!Stop)
            {
                loop.Reschedule(this, tag);
            }
        }

        public void OnLoopFailure(Exception error)
        {
        }
    }
}
