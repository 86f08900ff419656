using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using BindProxy.Kafka.Protocol;

namespace BindProxy.Kafka.Rewriting;

/// <summary>
/// Collects the byte-range replacements one response needs while a walker reads it, then writes the
/// new frame in one pass: original bytes are copied around the edits, so every field the proxy does
/// not understand (tagged fields included) survives byte-exact.
/// </summary>
/// <remarks>
/// Two kinds of edit, always recorded in frame order:
/// <code>
/// host/port   [host string][port int32]      replaced by the mapped host and port
/// size        [uvarint size] of a tagged field whose content holds host/port edits;
///             rewritten to the new content size (its own width may change)
/// </code>
/// The frame's int32 size prefix is recomputed from the sum of all changes.
/// </remarks>
internal sealed class ResponseEditor
{
    private const int ClassicStringMaxBytes = short.MaxValue;

    private readonly IBrokerAddressMapper _mapper;
    private readonly List<Edit> _edits = [];
    private int _hostEdits;

    public ResponseEditor(IBrokerAddressMapper mapper)
    {
        _mapper = mapper;
    }

    public MalformedReason Error { get; private set; }

    public bool HasChanges => _hostEdits > 0;

    /// <summary>
    /// Reads a Host string and the Port int32 that follows it (the layout of every broker struct the
    /// proxy rewrites) and records a replacement when the mapper changes either.
    /// </summary>
    public bool TryMapHostPort(ref KafkaWireReader reader, int nodeId, bool compact)
    {
        var start = reader.Position;
        if (!reader.TryReadString(compact, out var host) || !reader.TryReadInt32(out var port))
        {
            return false;
        }

        // NodeId -1 with an empty host is how FindCoordinator says "no coordinator": nothing to map.
        if (nodeId < 0 || string.IsNullOrEmpty(host))
        {
            return true;
        }

        var (newHost, newPort) = _mapper.Map(nodeId, host, port);
        if (newPort == port && string.Equals(newHost, host, StringComparison.Ordinal))
        {
            return true;
        }

        var hostBytes = Encoding.UTF8.GetByteCount(newHost);
        if (!compact && hostBytes > ClassicStringMaxBytes)
        {
            Error = MalformedReason.MappedHostTooLong;
            return false;
        }

        var replacement = new byte[VarintOrShortLength(compact, hostBytes) + hostBytes + 4];
        var span = replacement.AsSpan();
        var written = WriteLength(span, compact, hostBytes);
        written += Encoding.UTF8.GetBytes(newHost, span[written..]);
        BinaryPrimitives.WriteInt32BigEndian(span[written..], newPort);

        _edits.Add(new Edit(start, reader.Position, replacement));
        _hostEdits++;
        return true;
    }

    /// <summary>Marks the uvarint size of a tagged field that may contain host/port edits.</summary>
    public int BeginSizedRegion(long sizeStart, long contentStart, uint size)
    {
        _edits.Add(new Edit(sizeStart, contentStart, null) { OldSize = size, ContentStart = contentStart, ContentEnd = contentStart + size });
        return _edits.Count - 1;
    }

    /// <summary>
    /// Writes the edited frame: new size prefix, then the original bytes with every edit applied.
    /// Only valid when <see cref="HasChanges"/>.
    /// </summary>
    public bool TryWrite(in ReadOnlySequence<byte> frame, IBufferWriter<byte> output)
    {
        long delta = 0;
        foreach (var edit in _edits)
        {
            delta += edit.Replacement is { } bytes
                ? bytes.Length - (edit.End - edit.Start)
                : NewSizeLength(edit) - (edit.End - edit.Start);
        }

        var newBodyLength = frame.Length - KafkaWireConstants.SizePrefixLength + delta;
        if (newBodyLength > int.MaxValue)
        {
            Error = MalformedReason.MappedHostTooLong;
            return false;
        }

        BinaryPrimitives.WriteInt32BigEndian(output.GetSpan(4), (int)newBodyLength);
        output.Advance(4);

        long cursor = KafkaWireConstants.SizePrefixLength;
        foreach (var edit in _edits)
        {
            Copy(frame.Slice(cursor, edit.Start - cursor), output);
            if (edit.Replacement is { } bytes)
            {
                output.Write(bytes);
            }
            else
            {
                var span = output.GetSpan(5);
                output.Advance(WriteUVarint(span, NewSize(edit)));
            }

            cursor = edit.End;
        }

        Copy(frame.Slice(cursor), output);
        return true;
    }

    private uint NewSize(in Edit region)
    {
        long size = region.OldSize;
        foreach (var edit in _edits)
        {
            if (edit.Replacement is { } bytes && edit.Start >= region.ContentStart && edit.End <= region.ContentEnd)
            {
                size += bytes.Length - (edit.End - edit.Start);
            }
        }

        return (uint)size;
    }

    private int NewSizeLength(in Edit region) => UVarintLength(NewSize(region));

    private static void Copy(in ReadOnlySequence<byte> source, IBufferWriter<byte> output)
    {
        foreach (var segment in source)
        {
            output.Write(segment.Span);
        }
    }

    private static int VarintOrShortLength(bool compact, int length) =>
        compact ? UVarintLength((uint)length + 1) : 2;

    private static int WriteLength(Span<byte> span, bool compact, int length)
    {
        if (compact)
        {
            return WriteUVarint(span, (uint)length + 1);
        }

        BinaryPrimitives.WriteInt16BigEndian(span, (short)length);
        return 2;
    }

    internal static int UVarintLength(uint value)
    {
        var length = 1;
        while (value >= 0x80)
        {
            value >>= 7;
            length++;
        }

        return length;
    }

    internal static int WriteUVarint(Span<byte> span, uint value)
    {
        var i = 0;
        while (value >= 0x80)
        {
            span[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        span[i++] = (byte)value;
        return i;
    }

    /// <summary>Replace [Start, End) with Replacement, or (Replacement null) with the region's new uvarint size.</summary>
    private readonly record struct Edit(long Start, long End, byte[]? Replacement)
    {
        public uint OldSize { get; init; }

        public long ContentStart { get; init; }

        public long ContentEnd { get; init; }
    }
}
