using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading.Channels;

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

    private readonly Channel<TapEvent> _queue = Channel.CreateUnbounded<TapEvent>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CaptureLegs _legs;
    private readonly Func<ConnectionTap, CaptureMatch> _match;
    private readonly CaptureLimits _limits;
    private readonly ConcurrentDictionary<ConnectionTap, byte> _taps = new();
    private readonly ConcurrentDictionary<(ConnectionTap, CaptureLeg), StrongBox<long>> _drops = new();
    private readonly Dictionary<ConnectionTap, Connection> _connections = [];
    private readonly Dictionary<(string Route, CaptureLeg Leg), Interface> _interfaces = [];
    private readonly PcapngWriter _writer = new();
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

    internal void Attached(ConnectionTap tap) => _taps.TryAdd(tap, 0);

    internal void Detached(ConnectionTap tap) => _taps.TryRemove(tap, out _);

    /// <summary>On the forwarding path: queues a copy, or drops and counts it; never waits.</summary>
    internal void Offer(ConnectionTap tap, CaptureLeg leg, TapKind kind, bool fromPeer, long offset, ReadOnlySpan<byte> data, long timestamp, string? comment)
    {
        if (_finished || ((int)_legs & (leg == CaptureLeg.Client ? (int)CaptureLegs.Client : (int)CaptureLegs.Upstream)) == 0)
        {
            return;
        }

        int cost = data.Length + EventCost;
        if (Interlocked.Add(ref _queuedBytes, cost) > _limits.QueueBytes && kind == TapKind.Data)
        {
            // FIN, RST and comments are never dropped: there are few, and a leg's end keeps it whole.
            Interlocked.Add(ref _queuedBytes, -cost);
            Drop(tap, leg);
            return;
        }

        byte[]? buffer = null;
        if (!data.IsEmpty)
        {
            buffer = ArrayPool<byte>.Shared.Rent(data.Length);
            data.CopyTo(buffer);
        }

        if (!_queue.Writer.TryWrite(new TapEvent(tap, leg, kind, fromPeer, offset, buffer, data.Length, timestamp, comment)))
        {
            Interlocked.Add(ref _queuedBytes, -cost);
            Return(buffer);
        }
    }

    private void Drop(ConnectionTap tap, CaptureLeg leg)
    {
        Interlocked.Increment(ref _dropped);
        Interlocked.Increment(ref _drops.GetOrAdd((tap, leg), static _ => new StrongBox<long>()).Value);
    }

    /// <summary>Writes the capture to <paramref name="output"/> until it is cancelled, a limit is reached or the output fails.</summary>
    public Task RunAsync(Stream output, CancellationToken cancellationToken) => RunAsync(output, files: null, cancellationToken);

    /// <summary>
    /// Writes the capture to rolling files until it is cancelled or a file cannot be written: each
    /// file a section of its own, with its interfaces declared again and a made-up handshake for
    /// every connection it continues, so each opens in Wireshark by itself.
    /// </summary>
    public async Task RunAsync(CaptureFileSet files, CancellationToken cancellationToken)
    {
        var first = files.Next();
        try
        {
            await RunAsync(first, files, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await _output!.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The file being written, for rolling files.</summary>
    public string? CurrentFile => _files?.Current;

    private Stream? _output;
    private CaptureFileSet? _files;
    private long _fileStart;

    private async Task RunAsync(Stream output, CaptureFileSet? files, CancellationToken cancellationToken)
    {
        _output = output;
        _files = files;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (_limits.Duration is { } duration)
        {
            stop.CancelAfter(duration);
        }

        var token = stop.Token;
        try
        {
            WriteSectionHeader();
            await FlushAsync(token).ConfigureAwait(false);
            var reader = _queue.Reader;
            while (!token.IsCancellationRequested && !LimitReached)
            {
                int batch = 0;
                while (!LimitReached && reader.TryRead(out var item))
                {
                    batch++;
                    Interlocked.Add(ref _queuedBytes, -(item.Length + EventCost));
                    Handle(item);
                    if (RotationDue)
                    {
                        await RotateAsync(token).ConfigureAwait(false);
                    }
                    else if (_writer.Pending >= 256 * 1024)
                    {
                        await FlushAsync(token).ConfigureAwait(false);
                    }
                }

                Recheck();
                await FlushAsync(token).ConfigureAwait(false);
                if (RotationDue)
                {
                    await RotateAsync(token).ConfigureAwait(false);
                }

                if (LimitReached)
                {
                    break;
                }

                if (batch is > 0 and < BatchEvents)
                {
                    // A few events at a time: let more gather before the next turn, so a bulk stream
                    // is written in large writes instead of a wakeup and a flush per segment. The
                    // queue holds milliseconds of a fast stream; a live viewer waits at most this long.
                    await Task.Delay(BatchWait, token).ConfigureAwait(false);
                    continue;
                }

                // Wait for packets; undecided connections are asked again a few times a second.
                using var tick = CancellationTokenSource.CreateLinkedTokenSource(token);
                tick.CancelAfter(TimeSpan.FromMilliseconds(200));
                try
                {
                    if (!await reader.WaitToReadAsync(tick.Token).ConfigureAwait(false))
                    {
                        break;
                    }
                }
                catch (OperationCanceledException) when (!token.IsCancellationRequested)
                {
                }
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
            await WriteStatisticsAsync().ConfigureAwait(false);
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
    private async Task RotateAsync(CancellationToken token)
    {
        await WriteStatisticsAsync().ConfigureAwait(false);
        await _output!.DisposeAsync().ConfigureAwait(false);
        _output = _files!.Next();
        _fileStart = _writer.BytesWritten;
        _interfaces.Clear();
        foreach (var connection in _connections.Values)
        {
            connection.ClientLeg = connection.ClientLeg?.Continue();
            connection.UpstreamLeg = connection.UpstreamLeg?.Continue();
        }

        WriteSectionHeader();
        await FlushAsync(token).ConfigureAwait(false);
    }

    private bool LimitReached =>
        (_limits.Packets is { } packets && Interlocked.Read(ref _packets) >= packets) ||
        (_limits.Bytes is { } bytes && _writer.BytesWritten >= bytes);

    private async Task FlushAsync(CancellationToken token)
    {
        if (_writer.Pending > 0)
        {
            await _output!.WriteAsync(_writer.Take(), token).ConfigureAwait(false);
            _writer.Clear();
        }

        await _output!.FlushAsync(token).ConfigureAwait(false);
    }

    private async Task WriteStatisticsAsync()
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
            await FlushAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            // The reader has gone; the statistics go with it.
        }
    }

    private void DrainQueue()
    {
        while (_queue.Reader.TryRead(out var item))
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
                if (_heldBytes + item.Length > MaxHeldBytes && item.Kind == TapKind.Data)
                {
                    Drop(item.Tap, item.Leg);
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
        var tap = item.Tap;
        if (item.Kind == TapKind.Comment)
        {
            connection.Comment = connection.Comment is null ? item.Comment : $"{connection.Comment}; {item.Comment}";
            return;
        }

        var (a, b) = item.Leg == CaptureLeg.Client ? (tap.Client, tap.Listener) : (tap.Source, tap.Upstream);
        if (a is null || b is null)
        {
            return;
        }

        if (!_interfaces.TryGetValue((tap.Route, item.Leg), out var face))
        {
            var description = item.Leg == CaptureLeg.Client
                ? $"route {tap.Route}: client ↔ proxy listener"
                : $"route {tap.Route}: proxy source ↔ upstream";
            if (tap.TlsOf(item.Leg) is not null)
            {
                description += " (TLS on the wire; written as the plaintext the proxy sent and received)";
            }

            face = new Interface(_writer.WriteInterface($"{tap.Route} {(item.Leg == CaptureLeg.Client ? "client" : "upstream")}", description));
            _interfaces[(tap.Route, item.Leg)] = face;
        }

        long micros = Micros(item.Timestamp);
        long before = _writer.PacketCount;
        ref var framer = ref item.Leg == CaptureLeg.Client ? ref connection.ClientLeg : ref connection.UpstreamLeg;
        if (framer is null)
        {
            // From the start, both streams begin at offset 0; from the middle, at the first byte seen each way.
            long? start = tap.FromStart ? 0 : null;
            framer = new TcpFramer(a, b, (uint)Random.Shared.Next(), (uint)Random.Shared.Next(), start, start);
            framer.Handshake(_writer, face.Id, micros, WithTls(tap, item.Leg, tap.FromStart
                ? "handshake made up by the capture (the proxy sees bytes, not packets); the streams follow from their first byte"
                : "connection open before the capture began: handshake made up, the streams follow from the capture's start"));
        }
        else if (framer.NeedsHandshake)
        {
            framer.Handshake(_writer, face.Id, micros, WithTls(tap, item.Leg, "connection open before this file began: handshake made up, the streams follow from the file's start"));
        }

        bool fromA = item.Leg == CaptureLeg.Client ? item.FromPeer : !item.FromPeer;
        string? comment = TakeComment(tap, item.Leg, connection, item.Comment);
        switch (item.Kind)
        {
            case TapKind.Data:
                framer.Data(_writer, face.Id, micros, fromA, item.Offset, item.Buffer.AsSpan(0, item.Length), comment);
                break;
            case TapKind.Fin:
                framer.Finish(_writer, face.Id, micros, fromA, item.Offset, comment);
                break;
            case TapKind.Reset:
                framer.Reset(_writer, face.Id, micros, fromA, comment ?? (item.FromPeer ? null : "reset by the proxy"));
                break;
        }

        long written = _writer.PacketCount - before;
        face.Packets += written;
        Interlocked.Add(ref _packets, written);
    }

    /// <summary>A leg's first comment, which says when the leg is TLS on the wire and its bytes here are the plaintext.</summary>
    private static string WithTls(ConnectionTap tap, CaptureLeg leg, string comment) =>
        tap.TlsOf(leg) is { } tls ? $"decrypted from TLS: this leg is TLS on the wire ({tls}); written here as the plaintext the proxy sent and received. {comment}" : comment;

    private string? TakeComment(ConnectionTap tap, CaptureLeg leg, Connection connection, string? comment)
    {
        if (comment is null && connection.Comment is null && _drops.IsEmpty)
        {
            // Nearly every packet: nothing to say, nothing allocated.
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

        if (_drops.TryGetValue((tap, leg), out var box))
        {
            ref long reported = ref leg == CaptureLeg.Client ? ref connection.ReportedClientDrops : ref connection.ReportedUpstreamDrops;
            long dropped = Interlocked.Read(ref box.Value);
            if (dropped > reported)
            {
                parts.Add($"{dropped - reported} packets of this leg before this one not captured: the capture's queue was full");
                reported = dropped;
            }
        }

        return parts.Count == 0 ? null : string.Join("; ", parts);
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
