using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;

namespace BindProxy.Transport.Linux;

/// <summary>Receives readiness events for descriptors registered with an <see cref="EpollLoop"/>.</summary>
internal interface IEpollHandler
{
    /// <summary>Runs on the loop's thread. <paramref name="tag"/> is the value given at registration.</summary>
    void OnEvents(uint events, int tag);
}

/// <summary>
/// One thread waiting on one epoll set (edge-triggered) and running the handlers of the
/// descriptors registered with it; other work from other threads is posted to it. Any thread may
/// register a descriptor; from then on its handler runs on this thread only, so it needs no locks.
/// </summary>
internal sealed unsafe class EpollLoop : IDisposable
{
    private const int MaxEvents = 256;
    private const ulong WakeData = ulong.MaxValue;

    private readonly int _epoll;
    private readonly int _wake;
    private readonly Thread _thread;
    private readonly ConcurrentQueue<(Action<object?> Action, object? State)> _posted = new();
    private readonly Action<Exception> _onError;
    private int _wakePending;
    private int _disposed;
    private int _callers;
    private volatile bool _stopping;

    // Registration slots: epoll_data carries (generation << 32 | slot), so an event still queued
    // for a descriptor closed earlier in the same batch is recognised and dropped. Taking and
    // giving back a slot happens under _slotsGate; the loop reads entries without it.
    private readonly Lock _slotsGate = new();
    private volatile Slot[] _slots = new Slot[256];
    private readonly Stack<int> _freeSlots = new();
    private int _slotCount;

    public EpollLoop(string name, int bufferSize, Action<Exception> onError)
    {
        _onError = onError;
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

    /// <summary>Bytes handlers read at a time.</summary>
    public int BufferSize { get; }

    /// <summary>
    /// The loop's receive buffer (loop thread only). A handler that cannot send all it received
    /// keeps the array and calls <see cref="ReplaceBuffer"/>; it returns it to the shared pool later.
    /// </summary>
    public byte[] Buffer { get; private set; }

    public void ReplaceBuffer() => Buffer = ArrayPool<byte>.Shared.Rent(BufferSize);

    public bool IsLoopThread => Thread.CurrentThread == _thread;

    /// <summary>Runs <paramref name="action"/> on the loop thread, soon.</summary>
    public void Post(Action<object?> action, object? state)
    {
        _posted.Enqueue((action, state));
        if (!Enter())
        {
            return;
        }

        if (Interlocked.Exchange(ref _wakePending, 1) == 0)
        {
            ulong one = 1;
            Libc.Write(_wake, &one, sizeof(ulong));
        }

        Exit();
    }

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
    /// Watches <paramref name="fd"/> (any thread): events may reach the handler on the loop thread
    /// before this returns. Returns the slot to pass to <see cref="Unregister"/>.
    /// </summary>
    public int Register(int fd, uint events, IEpollHandler handler, int tag)
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
            entry.Fd = fd;
            generation = entry.Generation;
        }

        if (!Enter())
        {
            Release(slot);
            throw new ObjectDisposedException(nameof(EpollLoop));
        }

        int result = Control(Libc.EpollCtlAdd, fd, events | Libc.EpollEt, ((ulong)generation << 32) | (uint)slot);
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
    public bool Modify(int slot, int fd, uint events)
    {
        if (!Enter())
        {
            return false;
        }

        bool done = Control(Libc.EpollCtlMod, fd, events | Libc.EpollEt, ((ulong)_slots[slot].Generation << 32) | (uint)slot) == 0;
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
            Control(Libc.EpollCtlDel, _slots[slot].Fd, 0, 0);
        }

        Release(slot);
    }

    private void Release(int slot)
    {
        lock (_slotsGate)
        {
            ref var entry = ref _slots[slot];
            entry.Handler = null;
            entry.Generation++;
            _freeSlots.Push(slot);
        }
    }

    private int Control(int op, int fd, uint events, ulong data)
    {
        byte* ev = stackalloc byte[16];
        Unsafe.WriteUnaligned(ev, events);
        Unsafe.WriteUnaligned(ev + Libc.EpollDataOffset, data);
        return Libc.EpollCtl(_epoll, op, fd, ev);
    }

    private void Run()
    {
        int size = Libc.EpollEventSize;
        byte* events = stackalloc byte[MaxEvents * size];
        while (!_stopping)
        {
            int count = Libc.EpollWait(_epoll, events, MaxEvents, -1);
            if (count < 0)
            {
                if (Libc.Errno == Libc.EIntr)
                {
                    continue;
                }

                _onError(RawSocket.Error(Libc.Errno));
                return;
            }

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

                try
                {
                    handler.OnEvents(flags, entry.Tag);
                }
                catch (Exception e)
                {
                    _onError(e);
                }
            }
        }
    }

    private void RunPosted()
    {
        ulong value;
        Libc.Read(_wake, &value, sizeof(ulong));
        Volatile.Write(ref _wakePending, 0);

        // Only what was queued by now: work posted while these run (an accept burst re-posting its
        // wake-up) waits for the next turn, after the events already reported.
        for (int count = _posted.Count; count > 0 && _posted.TryDequeue(out var work); count--)
        {
            try
            {
                work.Action(work.State);
            }
            catch (Exception e)
            {
                _onError(e);
            }
        }
    }

    /// <summary>
    /// Stops the loop thread and closes the epoll and eventfd descriptors, once. If the thread does
    /// not stop in time they are left open: closing a number still in use, or twice, would close
    /// whatever socket got that number next.
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
        if (IsLoopThread || !_thread.Join(TimeSpan.FromSeconds(5)))
        {
            return;
        }

        // A Post or Register that read _disposed as 0 just before may still be using the descriptors.
        SpinWait.SpinUntil(() => Volatile.Read(ref _callers) == 0, TimeSpan.FromSeconds(1));
        Libc.Close(_wake);
        Libc.Close(_epoll);
    }

    private struct Slot
    {
        public IEpollHandler? Handler;
        public int Tag;
        public int Fd;
        public uint Generation;
    }
}
