using System.Buffers;
using System.Text;
using System.Text.Unicode;

namespace BindProxy.Kafka.Protocol;

/// <summary>
/// Reads the Kafka wire encodings over a frame that may span several buffer segments, for the
/// generated messages (<see cref="Messages"/>) and the few hand reads of headers. Every length and
/// count is checked against the bytes that remain before anything is allocated from it, so a forged
/// count costs one failed read. Failures return false and set <see cref="Error"/> (the first one
/// is kept): values, not exceptions, on the data path.
/// </summary>
/// <remarks>
/// <code>
/// classic string   int16 length (-1 = null)    then UTF-8 bytes
/// compact string   uvarint length+1 (0 = null) then UTF-8 bytes
/// classic bytes    int32 length (-1 = null)    then bytes        (also records)
/// compact bytes    uvarint length+1 (0 = null) then bytes
/// classic array    int32 count (-1 = null)     then elements
/// compact array    uvarint count+1 (0 = null)  then elements
/// uuid             16 bytes, most significant first
/// tagged fields    uvarint n, then n x (uvarint tag, uvarint size, size bytes), tags ascending
/// </code>
/// </remarks>
internal ref struct KafkaReader
{
    private const int MaxVarintBytes = 5;

    private SequenceReader<byte> _reader;

    public KafkaReader(in ReadOnlySequence<byte> sequence)
    {
        _reader = new SequenceReader<byte>(sequence);
        Error = MalformedReason.None;
    }

    public MalformedReason Error { get; private set; }

    /// <summary>Offset from the start of the sequence the reader was created over.</summary>
    public readonly long Position => _reader.Consumed;

    public readonly long Remaining => _reader.Remaining;

    public readonly bool End => _reader.End;

    public readonly ReadOnlySequence<byte> Sequence => _reader.Sequence;

    public bool ReadBool(out bool value)
    {
        var ok = ReadInt8(out var b);
        value = b != 0;
        return ok;
    }

    public bool ReadInt8(out sbyte value)
    {
        if (_reader.TryRead(out var b))
        {
            value = unchecked((sbyte)b);
            return true;
        }

        value = 0;
        return Fail(MalformedReason.Truncated);
    }

    public bool ReadInt16(out short value) => _reader.TryReadBigEndian(out value) || Fail(MalformedReason.Truncated);

    public bool ReadUInt16(out ushort value)
    {
        var ok = _reader.TryReadBigEndian(out short raw) || Fail(MalformedReason.Truncated);
        value = unchecked((ushort)raw);
        return ok;
    }

    public bool ReadInt32(out int value) => _reader.TryReadBigEndian(out value) || Fail(MalformedReason.Truncated);

    public bool ReadUInt32(out uint value)
    {
        var ok = _reader.TryReadBigEndian(out int raw) || Fail(MalformedReason.Truncated);
        value = unchecked((uint)raw);
        return ok;
    }

    public bool ReadInt64(out long value) => _reader.TryReadBigEndian(out value) || Fail(MalformedReason.Truncated);

    public bool ReadFloat64(out double value)
    {
        var ok = _reader.TryReadBigEndian(out long raw) || Fail(MalformedReason.Truncated);
        value = BitConverter.Int64BitsToDouble(raw);
        return ok;
    }

    public bool ReadUuid(out Guid value)
    {
        Span<byte> bytes = stackalloc byte[16];
        if (!_reader.TryCopyTo(bytes))
        {
            value = Guid.Empty;
            return Fail(MalformedReason.Truncated);
        }

        _reader.Advance(16);
        value = new Guid(bytes, bigEndian: true);
        return true;
    }

    public bool ReadUVarint(out uint value)
    {
        value = 0;
        for (var i = 0; i < MaxVarintBytes; i++)
        {
            if (!_reader.TryRead(out var b))
            {
                return Fail(MalformedReason.Truncated);
            }

            // The fifth byte may only carry the top 4 bits of a 32-bit value.
            if (i == MaxVarintBytes - 1 && b > 0x0F)
            {
                return Fail(MalformedReason.InvalidVarint);
            }

            value |= (uint)(b & 0x7F) << (7 * i);
            if ((b & 0x80) == 0)
            {
                return true;
            }
        }

        return Fail(MalformedReason.InvalidVarint);
    }

    public bool Skip(long count)
    {
        if (count < 0)
        {
            return Fail(MalformedReason.InvalidLength);
        }

        if (count > _reader.Remaining)
        {
            return Fail(MalformedReason.Truncated);
        }

        _reader.Advance(count);
        return true;
    }

    /// <summary>A length prefix: int16 (strings) or int32 (bytes, arrays) when classic, uvarint+1 when compact; -1 is null.</summary>
    private bool ReadLength(bool compact, bool wide, bool nullable, out int length)
    {
        length = -1;
        if (compact)
        {
            if (!ReadUVarint(out var raw))
            {
                return false;
            }

            if (raw > int.MaxValue)
            {
                return Fail(MalformedReason.InvalidLength);
            }

            length = (int)raw - 1;
        }
        else if (wide)
        {
            if (!ReadInt32(out length))
            {
                return false;
            }
        }
        else
        {
            if (!ReadInt16(out var shortLength))
            {
                return false;
            }

            length = shortLength;
        }

        return length >= 0 || (length == -1 && nullable) || Fail(MalformedReason.InvalidLength);
    }

    public bool ReadString(bool compact, bool nullable, out string? value)
    {
        value = null;
        if (!ReadLength(compact, wide: false, nullable, out var length))
        {
            return false;
        }

        if (length < 0)
        {
            return true;
        }

        if (length > _reader.Remaining)
        {
            return Fail(MalformedReason.Truncated);
        }

        // Bounded by the frame: the length was checked against the remaining bytes.
        var bytes = _reader.UnreadSequence.Slice(0, length);
        if (bytes.IsSingleSegment)
        {
            if (!Utf8.IsValid(bytes.FirstSpan))
            {
                return Fail(MalformedReason.InvalidString);
            }

            value = Encoding.UTF8.GetString(bytes.FirstSpan);
        }
        else
        {
            var copy = bytes.ToArray();
            if (!Utf8.IsValid(copy))
            {
                return Fail(MalformedReason.InvalidString);
            }

            value = Encoding.UTF8.GetString(copy);
        }

        _reader.Advance(length);
        return true;
    }

    public bool SkipString(bool compact, bool nullable) =>
        ReadLength(compact, wide: false, nullable, out var length) && (length < 0 || Skip(length));

    public bool ReadBytes(bool compact, bool nullable, out byte[]? value)
    {
        value = null;
        if (!ReadLength(compact, wide: true, nullable, out var length))
        {
            return false;
        }

        if (length < 0)
        {
            return true;
        }

        if (length > _reader.Remaining)
        {
            return Fail(MalformedReason.Truncated);
        }

        value = _reader.UnreadSequence.Slice(0, length).ToArray();
        _reader.Advance(length);
        return true;
    }

    /// <summary>Record batches: a slice of the frame, not a copy (valid as long as the frame's buffer is).</summary>
    public bool ReadRecords(bool compact, bool nullable, out ReadOnlySequence<byte>? value)
    {
        value = null;
        if (!ReadLength(compact, wide: true, nullable, out var length))
        {
            return false;
        }

        if (length < 0)
        {
            return true;
        }

        if (length > _reader.Remaining)
        {
            return Fail(MalformedReason.Truncated);
        }

        value = _reader.UnreadSequence.Slice(0, length);
        _reader.Advance(length);
        return true;
    }

    public bool SkipBytes(bool compact, bool nullable) =>
        ReadLength(compact, wide: true, nullable, out var length) && (length < 0 || Skip(length));

    /// <summary>
    /// An array's count (-1 = null). Rejected unless <paramref name="minElementBytes"/> times the count
    /// fits in what remains, so a list sized from it is bounded by the frame.
    /// </summary>
    public bool ReadArrayLength(bool compact, bool nullable, int minElementBytes, out int count)
    {
        if (!ReadLength(compact, wide: true, nullable, out count))
        {
            return false;
        }

        return count <= _reader.Remaining / Math.Max(1, minElementBytes) || Fail(MalformedReason.CountExceedsRemaining);
    }

    /// <summary>The number of tagged fields that follow; each takes at least two bytes.</summary>
    public bool ReadTaggedFieldCount(out int count)
    {
        count = 0;
        if (!ReadUVarint(out var raw))
        {
            return false;
        }

        if (raw > _reader.Remaining / 2)
        {
            return Fail(MalformedReason.CountExceedsRemaining);
        }

        count = (int)raw;
        return true;
    }

    /// <summary>A tagged field's tag and size; the size is checked against what remains.</summary>
    public bool ReadTagHeader(out uint tag, out int size)
    {
        size = 0;
        if (!ReadUVarint(out tag) || !ReadUVarint(out var raw))
        {
            return false;
        }

        if (raw > _reader.Remaining)
        {
            return Fail(MalformedReason.Truncated);
        }

        size = (int)raw;
        return true;
    }

    /// <summary>Keeps a tagged field this version does not know, so it is written back as it came.</summary>
    public bool ReadUnknownTaggedField(uint tag, int size, ref List<RawTaggedField>? unknown)
    {
        var bytes = _reader.UnreadSequence.Slice(0, size).ToArray();
        _reader.Advance(size);
        (unknown ??= []).Add(new RawTaggedField(tag, bytes));
        return true;
    }

    /// <summary>Steps over a whole tagged-field block, checking each declared size.</summary>
    public bool SkipTaggedFields()
    {
        if (!ReadTaggedFieldCount(out var count))
        {
            return false;
        }

        for (var i = 0; i < count; i++)
        {
            if (!ReadTagHeader(out _, out var size) || !Skip(size))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Fails with <see cref="MalformedReason.TaggedFieldSizeMismatch"/> unless the reader is at <paramref name="end"/>.</summary>
    public bool ExpectPosition(long end) => Position == end || Fail(MalformedReason.TaggedFieldSizeMismatch);

    /// <summary>Succeeds only when every byte has been consumed.</summary>
    public bool ExpectEnd() => _reader.End || Fail(MalformedReason.TrailingBytes);

    /// <summary>Records a failure (the first is kept: later ones are usually its consequences) and returns false.</summary>
    public bool Fail(MalformedReason reason)
    {
        if (Error == MalformedReason.None)
        {
            Error = reason;
        }

        return false;
    }
}
