using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace BindProxy.Capture;

/// <summary>
/// One running capture: the taps of the connections it may want hand it copies of their bytes
/// through a bounded queue (past <see cref="CaptureLimits.QueueBytes"/> a packet is dropped and
/// counted, never waited for), and <see cref="RunAsync"/> writes them as pcapng to its output,
/// one interface per route and leg, until the caller leaves or a limit is reached.
/// </summary>
/// <remarks>
/// Whether a connection is wanted may be known only later (a Kafka client.id arrives with the first
/// request): its packets are held, up to <see cref="MaxHeldBytes"/>, until <c>match</c> says.
/// </remarks>
internal sealed class CaptureSession
{
    /// <summary>Bytes held for connections not yet known to match.</summary>
    public const int MaxHeldBytes = 4 * 1024 * 1024;

    // Fewer events than this in one turn: wait BatchWait for more before the next.
    private const int BatchEvents = 32;
    private static readonly TimeSpan BatchWait = TimeSpan.FromMilliseconds(1);

    // What a queued event costs beyond its bytes, so a flood of tiny ones is bounded too.
    private const int EventCost = 64;

    private readonly ConcurrentQueue<TapEvent> _queue = new();
    // The writer sleeps on this while the queue is empty; a tap pulses it only when it does.
    private readonly object _signal = new();
    private int _sleeping;
    private readonly CaptureLegs _legs;
    private readonly Func<ConnectionTap, CaptureMatch> _match;
    private readonly CaptureLimits _limits;
    private readonly ConcurrentDictionary<ConnectionTap, bool> _taps = new();
    private readonly ConcurrentDictionary<(ConnectionTap, CaptureLeg), StrongBox<long>> _drops = new();
    private readonly Dictionary<ConnectionTap, Connection> _connections = [];
    private readonly Dictionary<(string Route, CaptureLeg Leg), Interface> _interfaces = [];
    private readonly PcapngWriter _writer = new();
    private readonly TcpFramer.PayloadSums _sums = new();
    private readonly long _startTicks = Stopwatch.GetTimestamp();
    private readonly long _startMicros = (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / 10;
    private long _queuedBytes;
    private long _dropped;
    private long _packets;
    private int _heldBytes;
    private volatile bool _finished;

    public CaptureSession(string description, CaptureLegs legs, Func<ConnectionTap, CaptureMatch> match, CaptureLimits limits)
    {
        Description = description;
        _legs = legs;
        _match = match;
        _limits = limits;
    }

    public string Description { get; }

    /// <summary>Told when a connection turns out not to be wanted, or when the capture ends (for each tap still attached).</summary>
    public Action<CaptureSession, ConnectionTap>? Release { get; set; }

    /// <summary>Packets dropped because the queue was full (or too much was held for undecided connections).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Packets written.</summary>
    public long Packets => Interlocked.Read(ref _packets);

    /// <summary>Bytes of pcapng written.</summary>
    public long BytesWritten => _writer.BytesWritten;

    public bool IsFinished => _finished;

    /// <summary>Bytes (and a small cost per packet) waiting in the queue.</summary>
    public long QueuedBytes => Interlocked.Read(ref _queuedBytes);

    /// <summary>The taps this capture is attached to.</summary>
    public ICollection<ConnectionTap> Taps => _taps.Keys;

    /// <param name="fromStart">This capture has the tap's streams from byte 0 (it was attached as the tap was made, before a byte moved).</param>
    internal void Attached(ConnectionTap tap, bool fromStart) => _taps.TryAdd(tap, fromStart);

    private bool FromStart(ConnectionTap tap) => _taps.TryGetValue(tap, out bool fromStart) && fromStart;

    internal void Detached(ConnectionTap tap) => _taps.TryRemove(tap, out _);

    /// <summary>On the forwarding path: queues a copy, or drops and counts it; never waits.</summary>
    internal void Offer(ConnectionTap tap, CaptureLeg leg, TapKind kind, bool fromPeer, long offset, ReadOnlySpan<byte> data, long timestamp, string? comment)
    {
        if (_finished || !Wants(leg))
        {
            return;
        }

        // FIN, RST and comments are never dropped: there are few, and a leg's end keeps it whole.
        if (kind == TapKind.Data && !Reserve(data.Length))
        {
            Drop(tap, leg);
            return;
        }

        if (kind != TapKind.Data)
        {
            Interlocked.Add(ref _queuedBytes, data.Length + EventCost);
        }

        Enqueue(new TapEvent(tap, leg, kind, fromPeer, offset, Copy(data), data.Length, timestamp, comment));
    }

    /// <summary>
    /// On the forwarding path: bytes received on <paramref name="leg"/> and sent on unchanged to
    /// the other leg, queued as one copy for both (or for the one leg this capture writes).
    /// </summary>
    internal void OfferRelayed(ConnectionTap tap, CaptureLeg leg, long offset, long sentOffset, ReadOnlySpan<byte> data, int sentLength, long timestamp)
    {
        var other = leg == CaptureLeg.Client ? CaptureLeg.Upstream : CaptureLeg.Client;
        bool received = Wants(leg);
        bool sent = sentLength > 0 && Wants(other);
        if (_finished || !(received || sent))
        {
            return;
        }

        if (!received)
        {
            Offer(tap, other, TapKind.Data, fromPeer: false, sentOffset, data[..sentLength], timestamp, null);
            return;
        }

        if (!sent)
        {
            Offer(tap, leg, TapKind.Data, fromPeer: true, offset, data, timestamp, null);
            return;
        }

        if (!Reserve(data.Length))
        {
            Drop(tap, leg);
            Drop(tap, other);
            return;
        }

        Enqueue(new TapEvent(tap, leg, TapKind.Relayed, true, offset, Copy(data), data.Length, timestamp, null, sentOffset, sentLength));
    }

    private bool Wants(CaptureLeg leg) => ((int)_legs & (leg == CaptureLeg.Client ? (int)CaptureLegs.Client : (int)CaptureLegs.Upstream)) != 0;

    /// <summary>
    /// Takes room in the queue for <paramref name="length"/> bytes, or says there is none. When it
    /// is full (as it stays while a bulk stream outruns the writer) that costs one read: nothing
    /// is copied, nothing is written to a shared line.
    /// </summary>
    private bool Reserve(int length)
    {
        int cost = length + EventCost;
        if (Volatile.Read(ref _queuedBytes) + cost > _limits.QueueBytes)
        {
            return false;
        }

        if (Interlocked.Add(ref _queuedBytes, cost) > _limits.QueueBytes)
        {
            Interlocked.Add(ref _queuedBytes, -cost);
            return false;
        }

        return true;
    }

    private static byte[]? Copy(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return null;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(data.Length);
        data.CopyTo(buffer);
        return buffer;
    }

    private void Enqueue(in TapEvent item)
    {
        _queue.Enqueue(item);
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _sleeping) != 0)
        {
            Wake();
        }
    }

    private void Drop(ConnectionTap tap, CaptureLeg leg)
    {
        Interlocked.Increment(ref _dropped);
        Interlocked.Increment(ref _drops.GetOrAdd((tap, leg), static _ => new StrongBox<long>()).Value);
    }

    /// <summary>Writes the capture to <paramref name="output"/> until it is cancelled, a limit is reached or the output fails.</summary>
    public Task RunAsync(Stream output, CancellationToken cancellationToken) =>
        WriterThread.Run("capture writer", () => Run(output, files: null, cancellationToken));

    /// <summary>
    /// Writes the capture to rolling files until it is cancelled or a file cannot be written: each
    /// file a section of its own, with its interfaces declared again and a made-up handshake for
    /// every connection it continues, so each opens in Wireshark by itself.
    /// </summary>
    public Task RunAsync(CaptureFileSet files, CancellationToken cancellationToken) =>
        WriterThread.Run("capture writer", () =>
        {
            var first = files.Next();
            try
            {
                Run(first, files, cancellationToken);
            }
            finally
            {
                _output!.Dispose();
            }
        });

    /// <summary>The file being written, for rolling files.</summary>
    public string? CurrentFile => _files?.Current;

    private Stream? _output;
    private CaptureFileSet? _files;
    private long _fileStart;

    /// <summary>
    /// The writer's loop, on its own thread (see <see cref="WriterThread"/>): framing, checksums and
    /// pcapng happen here, at low priority, and the output's writes are waited for here too.
    /// </summary>
    private void Run(Stream output, CaptureFileSet? files, CancellationToken cancellationToken)
    {
        _output = output;
        _files = files;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (_limits.Duration is { } duration)
        {
            stop.CancelAfter(duration);
        }

        var token = stop.Token;
        using var wakeOnStop = token.Register(Wake);
        using var contention = new CpuContention();
        int backOff = 0;
        try
        {
            WriteSectionHeader();
            Flush(token);
            while (!token.IsCancellationRequested && !LimitReached)
            {
                int batch = 0;
                bool contended = false;
                while (!LimitReached && _queue.TryDequeue(out var item))
                {
                    batch++;
                    Interlocked.Add(ref _queuedBytes, -(item.Length + EventCost));
                    Handle(item);
                    if (RotationDue)
                    {
                        Rotate(token);
                    }
                    else if (_writer.Pending >= 256 * 1024)
                    {
                        Flush(token);
                        if (contention.Contended())
                        {
                            contended = true;
                            break;
                        }
                    }
                }

                Recheck();
                Flush(token);
                if (RotationDue)
                {
                    Rotate(token);
                }

                if (LimitReached)
                {
                    break;
                }

                if (contended || contention.Contended())
                {
                    // Other threads wanted the CPU more than this one had it: whatever the writer
                    // writes costs them again as the reader takes it (at their priority), so it
                    // stays away, longer while that lasts, and the queue drops what it cannot hold.
                    backOff = Math.Min(Math.Max(backOff * 2, 5), 200);
                    token.WaitHandle.WaitOne(backOff);
                    continue;
                }

                backOff = 0;
                if (batch is > 0 and < BatchEvents)
                {
                    // A few events at a time: let more gather before the next turn, so a bulk stream
                    // is written in large writes instead of a wakeup and a flush per segment. The
                    // queue holds milliseconds of a fast stream; a live viewer waits at most this long.
                    token.WaitHandle.WaitOne(BatchWait);
                    continue;
                }

                // Wait for packets; undecided connections are asked again a few times a second.
                WaitForEvents(TimeSpan.FromMilliseconds(200), token);
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
        catch (IOException)
        {
            // The reader went away (or a capture file could not be written).
        }
        finally
        {
            _finished = true;
            foreach (var tap in _taps.Keys)
            {
                Release?.Invoke(this, tap);
            }

            DrainQueue();
            WriteStatistics();
        }
    }

    /// <summary>Sleeps until an event is queued, <paramref name="timeout"/> passes or the capture is cancelled.</summary>
    private void WaitForEvents(TimeSpan timeout, CancellationToken token)
    {
        lock (_signal)
        {
            Volatile.Write(ref _sleeping, 1);
            Interlocked.MemoryBarrier();
            if (_queue.IsEmpty && !token.IsCancellationRequested)
            {
                Monitor.Wait(_signal, timeout);
            }

            Volatile.Write(ref _sleeping, 0);
        }
    }

    private void Wake()
    {
        lock (_signal)
        {
            Monitor.Pulse(_signal);
        }
    }

    private void WriteSectionHeader()
    {
        var file = _files is null ? "" : $" File {Path.GetFileName(_files.Current)}; the files roll over at about {_files.RotateBytes} bytes, {_files.KeepFiles} kept.";
        _writer.WriteSectionHeader("BindProxy", $"BindProxy capture: {Description}. Each interface is one route's client or upstream leg; " +
            $"handshakes are made up (the proxy sees its sockets' bytes, not their packets).{file}");
    }

    private bool RotationDue => _files is { } files && _writer.BytesWritten - _fileStart >= files.RotateBytes;

    /// <summary>
    /// Ends the current file (its interfaces' statistics) and begins the next: a new section, whose
    /// interfaces are declared again as they are needed, and whose connections still open start
    /// with a made-up handshake and go on with the same sequence numbers.
    /// </summary>
    private void Rotate(CancellationToken token)
    {
        WriteStatistics();
        _output!.Dispose();
        _output = _files!.Next();
        _fileStart = _writer.BytesWritten;
        _interfaces.Clear();
        foreach (var connection in _connections.Values)
        {
            connection.ClientLeg = connection.ClientLeg?.Continue();
            connection.UpstreamLeg = connection.UpstreamLeg?.Continue();
        }

        WriteSectionHeader();
        Flush(token);
    }

    private bool LimitReached =>
        (_limits.Packets is { } packets && Interlocked.Read(ref _packets) >= packets) ||
        (_limits.Bytes is { } bytes && _writer.BytesWritten >= bytes);

    /// <summary>Hands what is written to the output and waits for it to take it (an HTTP response's writes stay asynchronous underneath).</summary>
    private void Flush(CancellationToken token)
    {
        if (_writer.Pending > 0)
        {
            var write = _output!.WriteAsync(_writer.Take(), token);
            if (write.IsCompletedSuccessfully)
            {
                write.GetAwaiter().GetResult();
            }
            else
            {
                write.AsTask().GetAwaiter().GetResult();
            }

            _writer.Clear();
        }

        _output!.FlushAsync(token).GetAwaiter().GetResult();
    }

    private void WriteStatistics()
    {
        long micros = Micros(Stopwatch.GetTimestamp());
        foreach (var ((route, leg), face) in _interfaces)
        {
            long dropped = _drops.Where(d => d.Key.Item1.Route == route && d.Key.Item2 == leg).Sum(d => d.Value.Value);
            _writer.WriteStatistics(face.Id, micros, face.Packets + dropped, dropped,
                dropped > 0 ? $"{dropped} packets not captured: the capture's queue was full (forwarding never waits for a capture)" : null);
        }

        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            Flush(timeout.Token);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            // The reader has gone; the statistics go with it.
        }
    }

    private void DrainQueue()
    {
        while (_queue.TryDequeue(out var item))
        {
            Interlocked.Add(ref _queuedBytes, -(item.Length + EventCost));
            Return(item.Buffer);
        }

        foreach (var connection in _connections.Values)
        {
            foreach (var held in connection.Held)
            {
                Return(held.Buffer);
            }

            connection.Held.Clear();
        }
    }

    private void Handle(in TapEvent item)
    {
        if (!_connections.TryGetValue(item.Tap, out var connection))
        {
            connection = new Connection();
            _connections[item.Tap] = connection;
        }

        if (connection.Match == CaptureMatch.Later)
        {
            Decide(item.Tap, connection);
        }

        switch (connection.Match)
        {
            case CaptureMatch.Yes:
                Write(item, connection);
                break;
            case CaptureMatch.No:
                Return(item.Buffer);
                break;
            default:
                if (_heldBytes + item.Length > MaxHeldBytes && item.Kind is TapKind.Data or TapKind.Relayed)
                {
                    Drop(item.Tap, item.Leg);
                    if (item.Kind == TapKind.Relayed)
                    {
                        Drop(item.Tap, Other(item.Leg));
                    }

                    Return(item.Buffer);
                }
                else
                {
                    _heldBytes += item.Length;
                    connection.Held.Add(item);
                }

                break;
        }
    }

    /// <summary>Asks about the connections still undecided (a client.id may have arrived since).</summary>
    private void Recheck()
    {
        foreach (var (tap, connection) in _connections)
        {
            if (connection.Match == CaptureMatch.Later)
            {
                Decide(tap, connection);
            }
        }
    }

    private void Decide(ConnectionTap tap, Connection connection)
    {
        connection.Match = _match(tap);
        if (connection.Match == CaptureMatch.Later)
        {
            return;
        }

        foreach (var held in connection.Held)
        {
            _heldBytes -= held.Length;
            if (connection.Match == CaptureMatch.Yes)
            {
                Write(held, connection);
            }
            else
            {
                Return(held.Buffer);
            }
        }

        connection.Held.Clear();
        if (connection.Match == CaptureMatch.No)
        {
            Release?.Invoke(this, tap);
        }
    }

    private void Write(in TapEvent item, Connection connection)
    {
        try
        {
            WriteFrames(item, connection);
        }
        finally
        {
            Return(item.Buffer);
        }
    }

    private void WriteFrames(in TapEvent item, Connection connection)
    {
        if (item.Kind == TapKind.Comment)
        {
            connection.Comment = connection.Comment is null ? item.Comment : $"{connection.Comment}; {item.Comment}";
            return;
        }

        long micros = Micros(item.Timestamp);
        if (item.Kind == TapKind.Relayed)
        {
            // Received on one leg, and (the first SentLength of it) sent on the other.
            // Both legs' packets of these bytes are cut at the same places: their payloads are summed once.
            var data = item.Buffer.AsSpan(0, item.Length);
            _sums.Clear();
            WriteLeg(item.Tap, connection, item.Leg, TapKind.Data, fromPeer: true, item.Offset, data, micros, null, _sums);
            WriteLeg(item.Tap, connection, Other(item.Leg), TapKind.Data, fromPeer: false, item.SentOffset, data[..item.SentLength], micros, null, _sums);
            return;
        }

        WriteLeg(item.Tap, connection, item.Leg, item.Kind, item.FromPeer, item.Offset, item.Buffer.AsSpan(0, item.Length), micros, item.Comment);
    }

    private void WriteLeg(ConnectionTap tap, Connection connection, CaptureLeg leg, TapKind kind, bool fromPeer, long offset, ReadOnlySpan<byte> data, long micros, string? itemComment,
        TcpFramer.PayloadSums? sums = null)
    {
        var (a, b) = leg == CaptureLeg.Client ? (tap.Client, tap.Listener) : (tap.Source, tap.Upstream);
        if (a is null || b is null)
        {
            return;
        }

        if (!_interfaces.TryGetValue((tap.Route, leg), out var face))
        {
            var description = leg == CaptureLeg.Client
                ? $"route {tap.Route}: client ↔ proxy listener"
                : $"route {tap.Route}: proxy source ↔ upstream";
            if (tap.TlsOf(leg) is not null)
            {
                description += " (TLS on the wire; written as the plaintext the proxy sent and received)";
            }

            face = new Interface(_writer.WriteInterface($"{tap.Route} {(leg == CaptureLeg.Client ? "client" : "upstream")}", description));
            _interfaces[(tap.Route, leg)] = face;
        }

        long before = _writer.PacketCount;
        ref var framer = ref leg == CaptureLeg.Client ? ref connection.ClientLeg : ref connection.UpstreamLeg;
        if (framer is null)
        {
            // From the start, both streams begin at offset 0; from the middle, at the first byte seen each way.
            bool fromStart = FromStart(tap);
            long? start = fromStart ? 0 : null;
            framer = new TcpFramer(a, b, (uint)Random.Shared.Next(), (uint)Random.Shared.Next(), start, start);
            framer.Handshake(_writer, face.Id, micros, WithTls(tap, leg, fromStart
                ? "handshake made up by the capture (the proxy sees bytes, not packets); the streams follow from their first byte"
                : "connection open before the capture began: handshake made up, the streams follow from the capture's start"));
        }
        else if (framer.NeedsHandshake)
        {
            framer.Handshake(_writer, face.Id, micros, WithTls(tap, leg, "connection open before this file began: handshake made up, the streams follow from the file's start"));
        }

        bool fromA = leg == CaptureLeg.Client ? fromPeer : !fromPeer;
        string? comment = TakeComment(tap, leg, connection, itemComment);
        switch (kind)
        {
            case TapKind.Data:
                framer.Data(_writer, face.Id, micros, fromA, offset, data, comment, sums);
                break;
            case TapKind.Fin:
                framer.Finish(_writer, face.Id, micros, fromA, offset, comment);
                break;
            case TapKind.Reset:
                framer.Reset(_writer, face.Id, micros, fromA, comment ?? (fromPeer ? null : "reset by the proxy"));
                break;
        }

        long written = _writer.PacketCount - before;
        face.Packets += written;
        Interlocked.Add(ref _packets, written);
    }

    private static CaptureLeg Other(CaptureLeg leg) => leg == CaptureLeg.Client ? CaptureLeg.Upstream : CaptureLeg.Client;

    /// <summary>A leg's first comment, which says when the leg is TLS on the wire and its bytes here are the plaintext.</summary>
    private static string WithTls(ConnectionTap tap, CaptureLeg leg, string comment) =>
        tap.TlsOf(leg) is { } tls ? $"decrypted from TLS: this leg is TLS on the wire ({tls}); written here as the plaintext the proxy sent and received. {comment}" : comment;

    private string? TakeComment(ConnectionTap tap, CaptureLeg leg, Connection connection, string? comment)
    {
        ref long reported = ref leg == CaptureLeg.Client ? ref connection.ReportedClientDrops : ref connection.ReportedUpstreamDrops;
        long dropped = !_drops.IsEmpty && _drops.TryGetValue((tap, leg), out var box) ? Interlocked.Read(ref box.Value) : reported;
        if (comment is null && connection.Comment is null && dropped <= reported)
        {
            // Nearly every packet, a capture that drops too: nothing to say, nothing allocated.
            return null;
        }

        var parts = new List<string>(3);
        if (comment is not null)
        {
            parts.Add(comment);
        }

        if (connection.Comment is not null)
        {
            parts.Add(connection.Comment);
            connection.Comment = null;
        }

        if (dropped > reported)
        {
            parts.Add($"{dropped - reported} packets of this leg before this one not captured: the capture's queue was full");
            reported = dropped;
        }

        return string.Join("; ", parts);
    }

    private long Micros(long timestamp) => _startMicros + (long)((timestamp - _startTicks) * 1_000_000.0 / Stopwatch.Frequency);

    private static void Return(byte[]? buffer)
    {
        if (buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private sealed class Connection
    {
        public CaptureMatch Match = CaptureMatch.Later;
        public readonly List<TapEvent> Held = [];
        public TcpFramer? ClientLeg;
        public TcpFramer? UpstreamLeg;
        public string? Comment;
        public long ReportedClientDrops;
        public long ReportedUpstreamDrops;
    }

    private sealed class Interface(int id)
    {
        public int Id { get; } = id;

        public long Packets { get; set; }
    }
}
