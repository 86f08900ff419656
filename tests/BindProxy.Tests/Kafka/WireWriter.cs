using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace BindProxy.Tests.Kafka;

/// <summary>An unknown tagged field, carried only to prove it survives rewriting byte-exact.</summary>
internal sealed record TaggedField(uint Tag, byte[] Data);

/// <summary>Test-side Kafka primitive encoder, written from the protocol's encoding rules.</summary>
internal sealed class WireWriter
{
    private readonly ArrayBufferWriter<byte> _buffer = new();

    public WireWriter Int8(sbyte value)
    {
        _buffer.GetSpan(1)[0] = unchecked((byte)value);
        _buffer.Advance(1);
        return this;
    }

    public WireWriter Bool(bool value) => Int8(value ? (sbyte)1 : (sbyte)0);

    public WireWriter Int16(short value)
    {
        BinaryPrimitives.WriteInt16BigEndian(_buffer.GetSpan(2), value);
        _buffer.Advance(2);
        return this;
    }

    public WireWriter Int32(int value)
    {
        BinaryPrimitives.WriteInt32BigEndian(_buffer.GetSpan(4), value);
        _buffer.Advance(4);
        return this;
    }

    public WireWriter Int64(long value)
    {
        BinaryPrimitives.WriteInt64BigEndian(_buffer.GetSpan(8), value);
        _buffer.Advance(8);
        return this;
    }

    public WireWriter UVarint(uint value)
    {
        while (value >= 0x80)
        {
            Raw([(byte)(value | 0x80)]);
            value >>= 7;
        }

        return Raw([(byte)value]);
    }

    public WireWriter Raw(ReadOnlySpan<byte> bytes)
    {
        _buffer.Write(bytes);
        return this;
    }

    public WireWriter Uuid(int seed) => Raw(Enumerable.Range(0, 16).Select(i => (byte)(seed * 31 + i)).ToArray());

    public WireWriter String(bool compact, string? value)
    {
        if (value is null)
        {
            return compact ? UVarint(0) : Int16(-1);
        }

        var bytes = Encoding.UTF8.GetBytes(value);
        if (compact)
        {
            UVarint((uint)bytes.Length + 1);
        }
        else
        {
            Int16((short)bytes.Length);
        }

        return Raw(bytes);
    }

    public WireWriter Bytes(bool compact, byte[]? value)
    {
        if (value is null)
        {
            return compact ? UVarint(0) : Int32(-1);
        }

        if (compact)
        {
            UVarint((uint)value.Length + 1);
        }
        else
        {
            Int32(value.Length);
        }

        return Raw(value);
    }

    public WireWriter ArrayCount(bool compact, int count) => compact ? UVarint((uint)count + 1) : Int32(count);

    public WireWriter Int32Array(bool compact, params int[] values)
    {
        ArrayCount(compact, values.Length);
        foreach (var value in values)
        {
            Int32(value);
        }

        return this;
    }

    /// <summary>Tag block: the given fields must already be sorted by tag.</summary>
    public WireWriter Tags(IReadOnlyList<TaggedField>? fields)
    {
        fields ??= [];
        UVarint((uint)fields.Count);
        foreach (var field in fields)
        {
            UVarint(field.Tag).UVarint((uint)field.Data.Length).Raw(field.Data);
        }

        return this;
    }

    public byte[] ToArray() => _buffer.WrittenSpan.ToArray();

    /// <summary>Prefixes the body with its int32 size.</summary>
    public byte[] ToFrame()
    {
        var body = _buffer.WrittenSpan;
        var frame = new byte[4 + body.Length];
        BinaryPrimitives.WriteInt32BigEndian(frame, body.Length);
        body.CopyTo(frame.AsSpan(4));
        return frame;
    }
}
