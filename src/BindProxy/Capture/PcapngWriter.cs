using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace BindProxy.Capture;

/// <summary>
/// Writes pcapng blocks (little-endian) into a buffer that the caller drains to its output:
/// one section, interfaces added as they are first needed, enhanced packet blocks with optional
/// comments, and interface statistics with received and dropped counts.
/// </summary>
/// <remarks>
/// Every block is <c>type(4) length(4) body… options… length(4)</c>, padded to 4 bytes; an option is
/// <c>code(2) length(2) value…</c> padded to 4, the list ended by code 0. Interfaces are raw IP
/// (<see cref="LinkTypeRaw"/>): each packet starts with its IPv4 or IPv6 header.
/// </remarks>
internal sealed class PcapngWriter
{
    /// <summary>LINKTYPE_RAW: packets are IPv4 or IPv6, told apart by their first nibble.</summary>
    public const ushort LinkTypeRaw = 101;

    private const uint SectionHeader = 0x0A0D0D0A;
    private const uint InterfaceDescription = 1;
    private const uint InterfaceStatistics = 5;
    private const uint EnhancedPacket = 6;
    private const ushort OptComment = 1;
    private const ushort OptName = 2;
    private const ushort OptDescription = 3;
    private const ushort OptUserApplication = 4;
    private const ushort OptTsResolution = 9;
    private const ushort IsbIfRecv = 4;
    private const ushort IsbIfDrop = 5;

    private readonly ArrayBufferWriter<byte> _buffer = new(64 * 1024);
    private int _interfaces;

    /// <summary>Bytes written so far, all blocks.</summary>
    public long BytesWritten { get; private set; }

    /// <summary>What is written and not yet taken by <see cref="Take"/>.</summary>
    public int Pending => _buffer.WrittenCount;

    public int InterfaceCount => _interfaces;

    /// <summary>Enhanced packet blocks written so far.</summary>
    public long PacketCount { get; private set; }

    /// <summary>The buffered blocks; valid until <see cref="Clear"/>.</summary>
    public ReadOnlyMemory<byte> Take() => _buffer.WrittenMemory;

    public void Clear() => _buffer.ResetWrittenCount();

    /// <summary>Starts a section (and forgets its interfaces: numbers restart in a new section).</summary>
    public void WriteSectionHeader(string application, string? comment)
    {
        _interfaces = 0;
        var block = Begin(SectionHeader, 16);
        BinaryPrimitives.WriteUInt32LittleEndian(block, 0x1A2B3C4D);
        BinaryPrimitives.WriteUInt16LittleEndian(block[4..], 1);
        BinaryPrimitives.WriteUInt16LittleEndian(block[6..], 0);
        BinaryPrimitives.WriteInt64LittleEndian(block[8..], -1); // section length not known
        _buffer.Advance(16);
        if (comment is not null)
        {
            Option(OptComment, comment);
        }

        Option(OptUserApplication, application);
        End();
    }

    /// <summary>Adds an interface (raw IP, microsecond timestamps) and returns its number in the section.</summary>
    public int WriteInterface(string name, string description)
    {
        var block = Begin(InterfaceDescription, 8);
        BinaryPrimitives.WriteUInt16LittleEndian(block, LinkTypeRaw);
        BinaryPrimitives.WriteUInt16LittleEndian(block[2..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(block[4..], 0); // no snapshot limit
        _buffer.Advance(8);
        Option(OptName, name);
        Option(OptDescription, description);
        Option(OptTsResolution, [6]); // 10^-6 s
        End();
        return _interfaces++;
    }

    /// <summary>One packet, timestamped in microseconds since the Unix epoch.</summary>
    public void WritePacket(int interfaceId, long timestampMicros, ReadOnlySpan<byte> packet, string? comment) =>
        WritePacket(interfaceId, timestampMicros, packet, [], comment);

    /// <summary>One packet given as its headers and its payload, which are written one after the other.</summary>
    public void WritePacket(int interfaceId, long timestampMicros, ReadOnlySpan<byte> headers, ReadOnlySpan<byte> payload, string? comment)
    {
        int length = headers.Length + payload.Length;
        var block = Begin(EnhancedPacket, 20);
        BinaryPrimitives.WriteUInt32LittleEndian(block, (uint)interfaceId);
        BinaryPrimitives.WriteUInt32LittleEndian(block[4..], (uint)((ulong)timestampMicros >> 32));
        BinaryPrimitives.WriteUInt32LittleEndian(block[8..], (uint)timestampMicros);
        BinaryPrimitives.WriteUInt32LittleEndian(block[12..], (uint)length);
        BinaryPrimitives.WriteUInt32LittleEndian(block[16..], (uint)length);
        _buffer.Advance(20);
        int padded = (length + 3) & ~3;
        var span = _buffer.GetSpan(padded);
        headers.CopyTo(span);
        payload.CopyTo(span[headers.Length..]);
        span[length..padded].Clear();
        _buffer.Advance(padded);
        if (comment is not null)
        {
            Option(OptComment, comment);
        }

        End();
        PacketCount++;
    }

    /// <summary>An interface's counts: packets it saw (written or dropped) and those dropped.</summary>
    public void WriteStatistics(int interfaceId, long timestampMicros, long received, long dropped, string? comment)
    {
        var block = Begin(InterfaceStatistics, 12);
        BinaryPrimitives.WriteUInt32LittleEndian(block, (uint)interfaceId);
        BinaryPrimitives.WriteUInt32LittleEndian(block[4..], (uint)((ulong)timestampMicros >> 32));
        BinaryPrimitives.WriteUInt32LittleEndian(block[8..], (uint)timestampMicros);
        _buffer.Advance(12);
        if (comment is not null)
        {
            Option(OptComment, comment);
        }

        Span<byte> value = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(value, received);
        Option(IsbIfRecv, value);
        BinaryPrimitives.WriteInt64LittleEndian(value, dropped);
        Option(IsbIfDrop, value);
        End();
    }

    private int _blockStart;

    private Span<byte> Begin(uint type, int fixedBody)
    {
        _blockStart = _buffer.WrittenCount;
        var head = _buffer.GetSpan(8);
        BinaryPrimitives.WriteUInt32LittleEndian(head, type);
        BinaryPrimitives.WriteUInt32LittleEndian(head[4..], 0); // patched by End
        _buffer.Advance(8);
        return _buffer.GetSpan(fixedBody);
    }

    private void End()
    {
        // opt_endofopt, then the trailing length; both lengths patched to the whole block's.
        var tail = _buffer.GetSpan(8);
        BinaryPrimitives.WriteUInt32LittleEndian(tail, 0);
        int length = _buffer.WrittenCount + 8 - _blockStart;
        BinaryPrimitives.WriteUInt32LittleEndian(tail[4..], (uint)length);
        _buffer.Advance(8);
        var written = System.Runtime.InteropServices.MemoryMarshal.AsMemory(_buffer.WrittenMemory).Span;
        BinaryPrimitives.WriteUInt32LittleEndian(written[(_blockStart + 4)..], (uint)length);
        BytesWritten += length;
    }

    private void Option(ushort code, string text)
    {
        int count = Encoding.UTF8.GetByteCount(text);
        var bytes = count <= 512 ? stackalloc byte[count] : new byte[count];
        Encoding.UTF8.GetBytes(text, bytes);
        Option(code, bytes[..Math.Min(count, ushort.MaxValue - 3)]);
    }

    private void Option(ushort code, ReadOnlySpan<byte> value)
    {
        var head = _buffer.GetSpan(4);
        BinaryPrimitives.WriteUInt16LittleEndian(head, code);
        BinaryPrimitives.WriteUInt16LittleEndian(head[2..], (ushort)value.Length);
        _buffer.Advance(4);
        Padded(value);
    }

    private void Padded(ReadOnlySpan<byte> bytes)
    {
        int padded = (bytes.Length + 3) & ~3;
        var span = _buffer.GetSpan(padded);
        bytes.CopyTo(span);
        span[bytes.Length..padded].Clear();
        _buffer.Advance(padded);
    }
}
