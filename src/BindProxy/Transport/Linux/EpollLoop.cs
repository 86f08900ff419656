using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

using System.Runtime.Versioning;

namespace BindProxy.Transport.Linux;

/// <summary>
/// One thread waiting on one epoll set (edge-triggered) and running the handlers of the
/// descriptors registered with it; other work from other threads is posted to it. Any thread may
/// register a descriptor; from then on its handler runs on this thread only, so it needs no locks.
/// </summary>
/// <remarks>
/// A turn of the loop: wait for events (not at all if some handler asked for another turn), run the
/// handlers of the events, then the handlers that asked for another turn in the turn before
/// (<see cref="Reschedule"/>). A handler that stops early to let others go first thus gets its
/// next go after every connection that became ready meanwhile. If <c>epoll_wait</c> fails, the
/// loop fails every handler it has, tells its owner, and from then on only runs posted work; no
/// descriptor can be registered with it any more. Work posted to a loop that has stopped runs on
/// the poster's thread, one job at a time: no job is ever dropped, so a waiter posted to a dead
/// loop completes and a relay aborted there closes its descriptors.
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed unsafe class EpollLoop : IDisposable
{
    private const int MaxEvents = 256;
    private const ulong WakeData = ulong.MaxValue;

    private readonly int _epoll;
    private readonly int _wake;
    private readonly Thread _thread;
    private readonly ConcurrentQueue<(Action<object?> Action, object? State)> _posted = new();
    private readonly Queue<(IEpollHandler Handler, int Tag)> _ready = new();
    private readonly Action<Exception> _onError;
    private readonly Action<EpollLoop, Exception>? _onFailed;
    private readonly SemaphoreSlim _failedWake = new(0); // never disposed: a late Post may still release it
    private readonly object _stoppedGate = new(); // Monitor: a job run after the stop may post another
    private int _wakePending;
    private int _stopped;
    private int _exitHandshake;
    private int _disposed;
    private int _failed;
    private int _callers;
    private volatile bool _stopping;

    // Registration slots: epoll_data carries (generation << 32 | slot), so an event still queued
    // for a descriptor closed earlier in the same batch is recognised and dropped. Taking and
    // giving back a slot happens under _slotsGate; the loop reads entries without it.
    private readonly Lock _slotsGate = new();
    private volatile Slot[] _slots = new Slot[256];
    private readonly Stack<int> _freeSlots = new();
    private int _slotCount;

    /// <param name="onError">Hears a handler's (or posted work's) exception; the handler is failed after it.</param>
    /// <param name="onFailed">Hears, once, that the loop cannot wait for events any more (on the loop's thread).</param>
    public EpollLoop(string name, int bufferSize, Action<Exception> onError, Action<EpollLoop, Exception>? onFailed = null)
    {
        _onError = onError;
        _onFailed = onFailed;
        Name = name;
        BufferSize = bufferSize;
        Buffer = ArrayPool<byte>.Shared.Rent(bufferSize);
        _epoll = Libc.EpollCreate1(Libc.EpollCloexec);
        if (_epoll < 0)
        {
            throw RawSocket.Error(Libc.Errno);
        }

        _wake = Libc.EventFd(0, Libc.EfdCloexec | Libc.EfdNonblock);
        if (_wake < 0)
        {
            int errno = Libc.Errno;
            Libc.Close(_epoll);
            throw RawSocket.Error(errno);
        }

        Control(Libc.EpollCtlAdd, _wake, Libc.EpollIn | Libc.EpollEt, WakeData);
        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.Start();
    }

    public string Name { get; }

    /// <summary>Bytes handlers read at a time.</summary>
    public int BufferSize { get; }

    /// <summary>
    /// The loop's receive buffer (loop thread only). A handler that cannot send all it received
    /// keeps the array and calls <see cref="ReplaceBuffer"/>; it returns it to the shared pool later.
    /// </summary>
    public byte[] Buffer { get; private set; }

    public void ReplaceBuffer() => Buffer = ArrayPool<byte>.Shared.Rent(BufferSize);

    public bool IsLoopThread => Thread.CurrentThread == _thread;

    /// <summary>True once the loop cannot wait for events any more: it takes no new descriptors.</summary>
    public bool IsFailed => Volatile.Read(ref _failed) != 0;

    /// <summary>
    /// The descriptor of the loop's epoll set, for tests that make <c>epoll_wait</c> fail by putting
    /// another file in its place.
    /// </summary>
    internal int EpollDescriptor => _epoll;

    /// <summary>The descriptor of the loop's eventfd, for tests that check it is closed.</summary>
    internal int WakeDescriptor => _wake;

    /// <summary>The loop's thread, for tests that wait for it to end.</summary>
    internal Thread Thread => _thread;

    /// <summary>True once Dispose has asked the loop to stop.</summary>
    internal bool IsStopping => _stopping;

    /// <summary>True once posted work no longer runs on the loop's thread but on the poster's.</summary>
    public bool IsStopped => Volatile.Read(ref _stopped) != 0;

    /// <summary>
    /// Runs <paramref name="action"/> on the loop thread, soon — or, once the loop has stopped, on
    /// this thread before returning (one job at a time across threads). It always runs, once. If it
    /// throws and <paramref name="state"/> is an <see cref="IEpollHandler"/>, that handler is failed.
    /// </summary>
    public void Post(Action<object?> action, object? state)
    {
        _posted.Enqueue((action, state));

        // The full fence pairs with StopRunningPosts: either this read sees the stop and runs the
        // work here, or the stopping thread's last drain (which comes after its write) sees the work.
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _stopped) != 0)
        {
            RunAfterStop();
            return;
        }

        if (!Enter())
        {
            return; // disposing: the loop thread's last drain, or Dispose's, runs it
        }

        // Invariant: work in the queue is run, or _wakePending is 1 and an eventfd write (or, once
        // failed, a semaphore release) is on its way that makes the loop look at the queue. The
        // loop sets _wakePending to 0 with a full fence before it reads the queue (RunPosted), and
        // this exchange is a full fence after the enqueue: either the loop's read sees the work,
        // or this exchange sees the 0 and writes.
        if (Interlocked.Exchange(ref _wakePending, 1) == 0)
        {
            ulong one = 1;
            Libc.Write(_wake, &one, sizeof(ulong));
        }

        // The same pairing for a loop that has failed: it sets _failed, then drains the queue once.
        if (Volatile.Read(ref _failed) != 0)
        {
            _failedWake.Release();
        }

        Exit();
    }

    /// <summary>
    /// Runs <paramref name="handler"/>'s <see cref="IEpollHandler.OnEvents"/> with no events in the
    /// loop's next turn, after the events that turn brings (loop thread only). Edge-triggered epoll
    /// does not report a socket again while it stays readable, so a handler that stops reading
    /// before a socket is drained asks for its next go here.
    /// </summary>
    public void Reschedule(IEpollHandler handler, int tag) => _ready.Enqueue((handler, tag));

    // Other threads' use of the epoll and eventfd descriptors: after Dispose their numbers may
    // belong to other files, so none starts then, and Dispose waits for those under way.
    private bool Enter()
    {
        Interlocked.Increment(ref _callers);
        if (Volatile.Read(ref _disposed) == 0)
        {
            return true;
        }

        Exit();
        return false;
    }

    private void Exit() => Interlocked.Decrement(ref _callers);

    /// <summary>
    /// Watches <paramref name="socket"/> (any thread): events may reach the handler on the loop thread
    /// before this returns. Returns the slot to pass to <see cref="Unregister"/>. Throws
    /// <see cref="ObjectDisposedException"/> when the loop is disposed or has failed.
    /// </summary>
    public int Register(SafeHandle socket, uint events, IEpollHandler handler, int tag)
    {
        int slot;
        uint generation;
        lock (_slotsGate)
        {
            if (!_freeSlots.TryPop(out slot))
            {
                if (_slotCount == _slots.Length)
                {
                    var grown = new Slot[_slots.Length * 2];
                    Array.Copy(_slots, grown, _slotCount);
                    _slots = grown;
                }

                slot = _slotCount++;
            }

            ref var entry = ref _slots[slot];
            entry.Handler = handler;
            entry.Tag = tag;
            entry.Socket = socket;
            generation = entry.Generation;
        }

        // A loop that failed after the slot was filled fails this handler with the others; one that
        // failed before is seen here (it sets _failed before it reads the slots under the same lock).
        if (IsFailed || !Enter())
        {
            Release(slot);
            throw new ObjectDisposedException(Name);
        }

        int result = Control(Libc.EpollCtlAdd, (int)socket.DangerousGetHandle(), events | Libc.EpollEt, ((ulong)generation << 32) | (uint)slot);
        int errno = result != 0 ? Libc.Errno : 0;
        Exit();
        if (result != 0)
        {
            Release(slot);
            throw RawSocket.Error(errno);
        }

        return slot;
    }

    /// <summary>Changes the events watched for a registered descriptor (any thread); false when epoll refused or the loop is disposed.</summary>
    public bool Modify(int slot, uint events)
    {
        if (!Enter())
        {
            return false;
        }

        ref var entry = ref _slots[slot];
        bool done = Control(Libc.EpollCtlMod, (int)entry.Socket!.DangerousGetHandle(), events | Libc.EpollEt, ((ulong)entry.Generation << 32) | (uint)slot) == 0;
        Exit();
        return done;
    }

    /// <summary>
    /// Stops watching (loop thread only). With <paramref name="keepOpen"/> the descriptor stays
    /// open and is taken out of the set; otherwise the caller closes it, which does that.
    /// </summary>
    public void Unregister(int slot, bool keepOpen)
    {
        if (keepOpen)
        {
            Control(Libc.EpollCtlDel, (int)_slots[slot].Socket!.DangerousGetHandle(), 0, 0);
        }

        Release(slot);
    }

    private void Release(int slot)
    {
        lock (_slotsGate)
        {
            ref var entry = ref _slots[slot];
            entry.Handler = null;
            entry.Socket = null;
            entry.Generation++;
            _freeSlots.Push(slot);
        }
    }

    private int Control(int op, int fd, uint events, ulong data)
    {
        byte* ev = stackalloc byte[16];
        Unsafe.WriteUnaligned(ev, events);
        Unsafe.WriteUnaligned(ev + Libc.EpollDataOffset, data);
        if (!Enter())
        {
            Marshal.SetLastPInvokeError(Libc.EBadF);
            return -1; // the set is gone, and with it every registration
        }

        int result = Libc.EpollCtl(_epoll, op, fd, ev);
        Exit();
        return result;
    }

    private void Run()
    {
        try
        {
            Turns();
        }
        finally
        {
            StopRunningPosts();
            ExitHandshake();
        }
    }

    private void Turns()
    {
        int size = Libc.EpollEventSize;
        byte* events = stackalloc byte[MaxEvents * size];
        while (!_stopping)
        {
            // Handlers waiting for another turn: look for new events without waiting, then run them.
            int count = Libc.EpollWait(_epoll, events, MaxEvents, _ready.Count > 0 ? 0 : -1);
            if (count < 0)
            {
                int errno = Libc.Errno;
                if (errno == Libc.EIntr)
                {
                    continue;
                }

                if (!_stopping)
                {
                    Fail(RawSocket.Error(errno));
                }

                return;
            }

            // Turns asked for before these events: one asked for while they run goes after the next wait.
            int asked = _ready.Count;
            for (int i = 0; i < count; i++)
            {
                byte* ev = events + (i * size);
                uint flags = Unsafe.ReadUnaligned<uint>(ev);
                ulong data = Unsafe.ReadUnaligned<ulong>(ev + Libc.EpollDataOffset);
                if (data == WakeData)
                {
                    RunPosted();
                    continue;
                }

                int slot = (int)(uint)data;
                ref var entry = ref _slots[slot];
                if (entry.Generation != (uint)(data >> 32) || entry.Handler is not { } handler)
                {
                    continue;
                }

                Dispatch(handler, flags, entry.Tag);
            }

            for (; asked > 0; asked--)
            {
                var (handler, tag) = _ready.Dequeue();
                Dispatch(handler, 0, tag);
            }
        }
    }

    private void Dispatch(IEpollHandler handler, uint events, int tag)
    {
        try
        {
            handler.OnEvents(events, tag);
        }
        catch (Exception e)
        {
            FailHandler(handler, e);
        }
    }

    private void FailHandler(IEpollHandler handler, Exception error)
    {
        _onError(error);
        try
        {
            handler.OnLoopFailure(error);
        }
        catch (Exception e)
        {
            _onError(e);
        }
    }

    private void RunPosted()
    {
        ulong value;
        Libc.Read(_wake, &value, sizeof(ulong));

        // A full fence before the queue is read: see the invariant in Post.
        Interlocked.Exchange(ref _wakePending, 0);
        RunQueued();
    }

    /// <summary>Runs the work queued by now: work posted while it runs (an accept burst re-posting its wake-up) waits for the next turn, after the events already reported.</summary>
    private void RunQueued()
    {
        for (int count = _posted.Count; count > 0 && _posted.TryDequeue(out var work); count--)
        {
            RunJob(work.Action, work.State);
        }
    }

    private void RunJob(Action<object?> action, object? state)
    {
        try
        {
            action(state);
        }
        catch (Exception e)
        {
            if (state is IEpollHandler handler)
            {
                FailHandler(handler, e);
            }
            else
            {
                _onError(e);
            }
        }
    }

    /// <summary>From here on posted work runs on the poster's thread; what is queued now runs here.</summary>
    private void StopRunningPosts()
    {
        lock (_stoppedGate)
        {
            Interlocked.Exchange(ref _stopped, 1);
            RunAfterStop();
        }
    }

    private void RunAfterStop()
    {
        lock (_stoppedGate)
        {
            while (_posted.TryDequeue(out var work))
            {
                RunJob(work.Action, work.State);
            }
        }
    }

    /// <summary>
    /// epoll_wait failed: every handler registered now is failed (their connections closed), the
    /// owner hears it, and the thread goes on running posted work only — handlers still finishing
    /// (a relay closing, a connect being given up) post it here — until the loop is disposed.
    /// </summary>
    private void Fail(Exception error)
    {
        Interlocked.Exchange(ref _failed, 1);
        var handlers = new HashSet<IEpollHandler>(ReferenceEqualityComparer.Instance);
        lock (_slotsGate)
        {
            for (int i = 0; i < _slotCount; i++)
            {
                if (_slots[i].Handler is { } handler)
                {
                    handlers.Add(handler);
                }
            }
        }

        _ready.Clear();
        foreach (var handler in handlers)
        {
            try
            {
                handler.OnLoopFailure(error);
            }
            catch (Exception e)
            {
                _onError(e);
            }
        }

        try
        {
            _onFailed?.Invoke(this, error);
        }
        catch (Exception e)
        {
            _onError(e);
        }

        while (!_stopping)
        {
            RunQueued();
            _failedWake.Wait();
        }
    }

    /// <summary>
    /// Stops the loop thread and closes the epoll set and the eventfd, once, whatever the thread
    /// does. A thread that does not stop in time (a handler stuck) keeps running on placeholders:
    /// the two numbers are pointed at /dev/null, which closes the epoll set and the eventfd at once
    /// while no other file can take the numbers the thread still uses; whichever of the thread and
    /// this call finishes last closes the numbers. Work still queued, or posted later, runs on the
    /// disposing or posting thread.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stopping = true;
        ulong one = 1;
        Libc.Write(_wake, &one, sizeof(ulong));
        _failedWake.Release();
        bool joined = !IsLoopThread && _thread.Join(StopWait);
        if (!joined)
        {
            StopRunningPosts();
        }

        // A Post or Register that read _disposed as 0 just before may still be using the descriptors.
        SpinWait.SpinUntil(() => Volatile.Read(ref _callers) == 0, TimeSpan.FromSeconds(1));
        if (!joined)
        {
            int placeholder = Libc.Open("/dev/null", Libc.ORdOnly | Libc.OCloexec);
            if (placeholder >= 0)
            {
                Libc.Dup2(placeholder, _epoll);
                Libc.Dup2(placeholder, _wake);
                Libc.Close(placeholder);
            }
        }

        ExitHandshake();
    }

    /// <summary>How long <see cref="Dispose"/> waits for the loop thread to stop.</summary>
    internal TimeSpan StopWait { get; init; } = TimeSpan.FromSeconds(5);

    // The loop thread on its way out and Dispose each come here once; the second closes the numbers.
    private void ExitHandshake()
    {
        if (Interlocked.Increment(ref _exitHandshake) == 2)
        {
            Libc.Close(_wake);
            Libc.Close(_epoll);
        }
    }

    private struct Slot
    {
        public IEpollHandler? Handler;
        public SafeHandle? Socket;
        public int Tag;
        public uint Generation;
    }
}
