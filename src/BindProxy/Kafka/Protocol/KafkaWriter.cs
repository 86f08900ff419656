using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace BindProxy.Kafka.Protocol;

/// <summary>
/// Writes the Kafka wire encodings (see <see cref="KafkaReader"/>) into a growable buffer that can
/// go back: a frame's size prefix is reserved and filled in at the end, and a tagged field's size is
/// put in front of its content once that is written. Writing what the version cannot carry (null in a
/// field that is not nullable there, a classic string over 32767 bytes) is a programming error and
/// throws; the data path only writes what it read or built within those rules.
/// </summary>
internal sealed class KafkaWriter : IBufferWriter<byte>
{
    private byte[] _buffer;
    private int _length;

    public KafkaWriter(int initialCapacity = 256)
    {
        _buffer = new byte[Math.Max(16, initialCapacity)];
    }

    public int Length => _length;

    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _length);

    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _length);

    public void Reset() => _length = 0;

    public byte[] ToArray() => WrittenSpan.ToArray();

    public void Advance(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (_length + count > _buffer.Length)
        {
            throw new InvalidOperationException("Advanced past the buffer.");
        }

        _length += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(Math.Max(1, sizeHint));
        return _buffer.AsMemory(_length);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(Math.Max(1, sizeHint));
        return _buffer.AsSpan(_length);
    }

    public void WriteBool(bool value) => WriteInt8(value ? (sbyte)1 : (sbyte)0);

    public void WriteInt8(sbyte value)
    {
        Ensure(1);
        _buffer[_length++] = unchecked((byte)value);
    }

    public void WriteInt16(short value)
    {
        BinaryPrimitives.WriteInt16BigEndian(Take(2), value);
    }

    public void WriteUInt16(ushort value) => BinaryPrimitives.WriteUInt16BigEndian(Take(2), value);

    public void WriteInt32(int value) => BinaryPrimitives.WriteInt32BigEndian(Take(4), value);

    public void WriteUInt32(uint value) => BinaryPrimitives.WriteUInt32BigEndian(Take(4), value);

    public void WriteInt64(long value) => BinaryPrimitives.WriteInt64BigEndian(Take(8), value);

    public void WriteFloat64(double value) => BinaryPrimitives.WriteInt64BigEndian(Take(8), BitConverter.DoubleToInt64Bits(value));

    public void WriteUuid(Guid value)
    {
        if (!value.TryWriteBytes(Take(16), bigEndian: true, out _))
        {
            throw new InvalidOperationException("A uuid takes 16 bytes.");
        }
    }

    public void WriteUVarint(uint value)
    {
        var span = Take(UVarintLength(value));
        var i = 0;
        while (value >= 0x80)
        {
            span[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        span[i] = (byte)value;
    }

    public static int UVarintLength(uint value)
    {
        var length = 1;
        while (value >= 0x80)
        {
            value >>= 7;
            length++;
        }

        return length;
    }

    public void WriteString(string? value, bool compact, bool nullable)
    {
        if (value is null)
        {
            WriteNullLength(compact, wide: false, nullable);
            return;
        }

        var count = Encoding.UTF8.GetByteCount(value);
        if (!compact && count > short.MaxValue)
        {
            throw new InvalidOperationException($"A string of {count} bytes does not fit an int16 length.");
        }

        WriteLength(count, compact, wide: false);
        Encoding.UTF8.GetBytes(value, Take(count));
    }

    public void WriteBytes(byte[]? value, bool compact, bool nullable)
    {
        if (value is null)
        {
            WriteNullLength(compact, wide: true, nullable);
            return;
        }

        WriteLength(value.Length, compact, wide: true);
        value.CopyTo(Take(value.Length));
    }

    public void WriteRecords(ReadOnlySequence<byte>? value, bool compact, bool nullable)
    {
        if (value is not { } records)
        {
            WriteNullLength(compact, wide: true, nullable);
            return;
        }

        WriteLength(checked((int)records.Length), compact, wide: true);
        Write(records);
    }

    /// <summary>An array's count, or -1 for null.</summary>
    public void WriteArrayLength(int count, bool compact, bool nullable)
    {
        if (count < 0)
        {
            WriteNullLength(compact, wide: true, nullable);
            return;
        }

        WriteLength(count, compact, wide: true);
    }

    public void Write(ReadOnlySpan<byte> bytes) => bytes.CopyTo(Take(bytes.Length));

    public void Write(in ReadOnlySequence<byte> bytes)
    {
        foreach (var segment in bytes)
        {
            Write(segment.Span);
        }
    }

    /// <summary>Writes a tagged field's tag and returns where its content starts, for <see cref="EndTaggedField"/>.</summary>
    public int BeginTaggedField(uint tag)
    {
        WriteUVarint(tag);
        return _length;
    }

    /// <summary>Puts the size of the content written since <see cref="BeginTaggedField"/> in front of it.</summary>
    public void EndTaggedField(int contentStart)
    {
        var size = _length - contentStart;
        var width = UVarintLength((uint)size);
        Ensure(width);
        _buffer.AsSpan(contentStart, size).CopyTo(_buffer.AsSpan(contentStart + width));
        var end = _length + width;
        _length = contentStart;
        WriteUVarint((uint)size);
        _length = end;
    }

    /// <summary>Writes the unknown tagged fields from <paramref name="next"/> on whose tag is below <paramref name="below"/>, keeping tag order.</summary>
    public void WriteUnknownTaggedFields(List<RawTaggedField>? unknown, ref int next, uint below)
    {
        while (unknown is not null && next < unknown.Count && unknown[next].Tag < below)
        {
            var field = unknown[next++];
            WriteUVarint(field.Tag);
            WriteUVarint((uint)field.Data.Length);
            Write(field.Data);
        }
    }

    /// <summary>Reserves a big-endian int32 (a size prefix) and returns its position for <see cref="PatchInt32"/>.</summary>
    public int ReserveInt32()
    {
        Take(4);
        return _length - 4;
    }

    public void PatchInt32(int position, int value) => BinaryPrimitives.WriteInt32BigEndian(_buffer.AsSpan(position, 4), value);

    private void WriteLength(int length, bool compact, bool wide)
    {
        if (compact)
        {
            WriteUVarint((uint)length + 1);
        }
        else if (wide)
        {
            WriteInt32(length);
        }
        else
        {
            WriteInt16((short)length);
        }
    }

    private void WriteNullLength(bool compact, bool wide, bool nullable)
    {
        if (!nullable)
        {
            throw new InvalidOperationException("Null in a field that is not nullable in this version.");
        }

        if (compact)
        {
            WriteUVarint(0);
        }
        else if (wide)
        {
            WriteInt32(-1);
        }
        else
        {
            WriteInt16(-1);
        }
    }

    private Span<byte> Take(int count)
    {
        Ensure(count);
        var span = _buffer.AsSpan(_length, count);
        _length += count;
        return span;
    }

    private void Ensure(int count)
    {
        if (_buffer.Length - _length >= count)
        {
            return;
        }

        var size = Math.Max(_buffer.Length * 2, _length + count);
        Array.Resize(ref _buffer, size);
    }
}
