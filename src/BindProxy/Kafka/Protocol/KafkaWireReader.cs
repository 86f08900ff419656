using System.Buffers;
using System.Text;

namespace BindProxy.Kafka.Protocol;

/// <summary>
/// Bounds-checked reader for Kafka primitive types over a frame. Every length or count read off
/// the wire is checked against the bytes that remain before anything is skipped, looped over or
/// allocated, so a forged count can cost at most one failed read. Failures set <see cref="Error"/>.
/// </summary>
/// <remarks>
/// Encodings handled:
/// <code>
/// classic string   int16 length (-1 = null)    then bytes
/// compact string   uvarint length+1 (0 = null) then bytes
/// classic array    int32 count (-1 = null)     then elements
/// compact array    uvarint count+1 (0 = null)  then elements
/// classic bytes    int32 length (-1 = null)    then bytes   (records)
/// compact bytes    uvarint length+1 (0 = null) then bytes
/// tagged fields    uvarint n, then n x (uvarint tag, uvarint size, size bytes)
/// </code>
/// </remarks>
internal ref struct KafkaWireReader
{
    private const int MaxVarintBytes = 5;

    private SequenceReader<byte> _reader;

    public KafkaWireReader(in ReadOnlySequence<byte> sequence)
    {
        _reader = new SequenceReader<byte>(sequence);
        Error = MalformedReason.None;
    }

    public MalformedReason Error { get; private set; }

    /// <summary>Offset from the start of the sequence the reader was created over.</summary>
    public long Position => _reader.Consumed;

    public long Remaining => _reader.Remaining;

    public ReadOnlySequence<byte> Sequence => _reader.Sequence;

    public bool TryReadInt8(out sbyte value)
    {
        if (_reader.TryRead(out var b))
        {
            value = unchecked((sbyte)b);
            return true;
        }

        value = 0;
        return Fail(MalformedReason.Truncated);
    }

    public bool TryReadInt16(out short value) =>
        _reader.TryReadBigEndian(out value) || Fail(MalformedReason.Truncated);

    public bool TryReadInt32(out int value) =>
        _reader.TryReadBigEndian(out value) || Fail(MalformedReason.Truncated);

    public bool TryReadInt64(out long value) =>
        _reader.TryReadBigEndian(out value) || Fail(MalformedReason.Truncated);

    public bool TrySkip(long count)
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

    public bool TryReadUVarint(out uint value)
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

    /// <summary>Reads a string/bytes/array length prefix; -1 means null.</summary>
    private bool TryReadLength(bool compact, bool wide, out int length)
    {
        length = -1;
        if (compact)
        {
            if (!TryReadUVarint(out var raw))
            {
                return false;
            }

            if (raw > int.MaxValue)
            {
                return Fail(MalformedReason.InvalidLength);
            }

            length = (int)raw - 1;
            return true;
        }

        if (wide)
        {
            if (!TryReadInt32(out length))
            {
                return false;
            }
        }
        else
        {
            if (!TryReadInt16(out var shortLength))
            {
                return false;
            }

            length = shortLength;
        }

        return length >= -1 || Fail(MalformedReason.InvalidLength);
    }

    /// <summary>
    /// Reads an array count (-1 = null). A count larger than the remaining bytes is rejected:
    /// every element of every array the proxy walks is at least one byte long.
    /// </summary>
    public bool TryReadArrayCount(bool compact, out int count)
    {
        if (!TryReadLength(compact, wide: true, out count))
        {
            return false;
        }

        return count <= _reader.Remaining || Fail(MalformedReason.CountExceedsRemaining);
    }

    /// <summary>Reads a string length prefix (-1 = null) and checks the bytes are present.</summary>
    public bool TryReadStringLength(bool compact, out int length)
    {
        if (!TryReadLength(compact, wide: false, out length))
        {
            return false;
        }

        return length <= _reader.Remaining || Fail(MalformedReason.Truncated);
    }

    public bool TryReadString(bool compact, out string? value)
    {
        value = null;
        if (!TryReadStringLength(compact, out var length))
        {
            return false;
        }

        if (length < 0)
        {
            return true;
        }

        // The length was checked against the remaining bytes, so the allocation is bounded by the frame.
        value = Encoding.UTF8.GetString(_reader.UnreadSequence.Slice(0, length));
        _reader.Advance(length);
        return true;
    }

    public bool TrySkipString(bool compact) =>
        TryReadStringLength(compact, out var length) && (length < 0 || TrySkip(length));

    /// <summary>Skips a bytes/records field: int32 length when classic, uvarint when compact.</summary>
    public bool TrySkipBytes(bool compact) =>
        TryReadLength(compact, wide: true, out var length) && (length < 0 || TrySkip(length));

    public bool TrySkipInt32Array(bool compact)
    {
        if (!TryReadArrayCount(compact, out var count))
        {
            return false;
        }

        return count < 0 || TrySkip(count * 4L);
    }

    /// <summary>Skips a whole tagged-field block, checking each declared size.</summary>
    public bool TrySkipTaggedFields()
    {
        if (!TryReadUVarint(out var fieldCount))
        {
            return false;
        }

        // Each field needs at least two bytes (tag and size), so the count is bounded by the frame.
        if (fieldCount > _reader.Remaining / 2)
        {
            return Fail(MalformedReason.CountExceedsRemaining);
        }

        for (var i = 0; i < fieldCount; i++)
        {
            if (!TryReadUVarint(out _) || !TryReadUVarint(out var size) || !TrySkip(size))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Succeeds only when every byte has been consumed.</summary>
    public bool TryExpectEnd() => _reader.End || Fail(MalformedReason.TrailingBytes);

    /// <summary>Records a failure found by a caller (for example trailing bytes) and returns false.</summary>
    public bool Fail(MalformedReason reason)
    {
        // Keep the first error: later ones are usually consequences.
        if (Error == MalformedReason.None)
        {
            Error = reason;
        }

        return false;
    }
}
