using System.Buffers;
using System.Buffers.Binary;

namespace BindProxy.Kafka.Framing;

/// <summary>Outcome of one <see cref="KafkaFrameReader.TryReadFrame"/> call.</summary>
internal enum FrameReadStatus
{
    /// <summary>A whole frame was sliced off the front of the buffer.</summary>
    Frame,

    /// <summary>The buffer holds only part of the next frame; nothing was consumed.</summary>
    NeedMoreData,

    /// <summary>The stream cannot be Kafka; the connection should be closed.</summary>
    Error,
}

internal enum FrameError
{
    None,

    /// <summary>The size prefix is negative.</summary>
    NegativeSize,

    /// <summary>The size prefix exceeds the configured limit.</summary>
    TooLarge,

    /// <summary>The bytes look like a TLS record (handshake or alert) rather than a Kafka size prefix.</summary>
    LooksLikeTls,
}

/// <summary>
/// Splits a byte stream into Kafka frames. Pure: no I/O, no copies; frames are slices of the input.
/// </summary>
/// <remarks>
/// Wire layout of every Kafka request and response:
/// <code>
/// +--------+--------+--------+--------+------------------------------+
/// |        size (int32, big-endian)   |  size bytes of message body  |
/// +--------+--------+--------+--------+------------------------------+
/// </code>
/// The size is checked against the limit as soon as its four bytes are in, so a hostile or
/// confused peer cannot make the caller buffer hundreds of megabytes waiting for a body.
/// </remarks>
internal static class KafkaFrameReader
{
    public const int SizePrefixLength = 4;

    // A TLS record starts with a content type (0x14 change_cipher_spec, 0x15 alert,
    // 0x16 handshake, 0x17 application_data) followed by major version 0x03. Read as a Kafka
    // size that is at least 0x14030000 (335 MB), far above any sane frame limit, but naming the
    // cause turns "frame too large" into an actionable "this port speaks TLS" (kafka-proxy #223).
    private const byte TlsMajorVersion = 0x03;
    private const byte TlsFirstContentType = 0x14;
    private const byte TlsLastContentType = 0x17;

    /// <summary>
    /// Tries to slice one whole frame (size prefix included) off the front of <paramref name="buffer"/>.
    /// On <see cref="FrameReadStatus.Frame"/> the buffer is advanced past the frame; otherwise it is untouched.
    /// </summary>
    public static FrameReadStatus TryReadFrame(
        ref ReadOnlySequence<byte> buffer,
        int maxFrameSize,
        out ReadOnlySequence<byte> frame,
        out FrameError error)
    {
        frame = default;
        error = FrameError.None;

        if (LooksLikeTls(buffer))
        {
            error = FrameError.LooksLikeTls;
            return FrameReadStatus.Error;
        }

        if (buffer.Length < SizePrefixLength)
        {
            return FrameReadStatus.NeedMoreData;
        }

        var size = ReadSize(buffer);
        if (size < 0)
        {
            error = FrameError.NegativeSize;
            return FrameReadStatus.Error;
        }

        if (size > maxFrameSize)
        {
            error = FrameError.TooLarge;
            return FrameReadStatus.Error;
        }

        long total = SizePrefixLength + (long)size;
        if (buffer.Length < total)
        {
            return FrameReadStatus.NeedMoreData;
        }

        frame = buffer.Slice(0, total);
        buffer = buffer.Slice(total);
        return FrameReadStatus.Frame;
    }

    /// <summary>
    /// How many more bytes must arrive before the next frame in <paramref name="buffer"/> is complete:
    /// 0 when a whole frame is already present. Meant for sizing reads and for
    /// <c>PipeReader.AdvanceTo(consumed, examined)</c>: everything buffered has been examined until
    /// this many more bytes arrive. Does not validate the size; <see cref="TryReadFrame"/> does.
    /// </summary>
    public static long BytesNeeded(in ReadOnlySequence<byte> buffer)
    {
        if (buffer.Length < SizePrefixLength)
        {
            return SizePrefixLength - buffer.Length;
        }

        var size = ReadSize(buffer);
        if (size < 0)
        {
            return 0;
        }

        long total = SizePrefixLength + (long)size;
        return Math.Max(0, total - buffer.Length);
    }

    private static int ReadSize(in ReadOnlySequence<byte> buffer)
    {
        Span<byte> prefix = stackalloc byte[SizePrefixLength];
        buffer.Slice(0, SizePrefixLength).CopyTo(prefix);
        return BinaryPrimitives.ReadInt32BigEndian(prefix);
    }

    private static bool LooksLikeTls(in ReadOnlySequence<byte> buffer)
    {
        if (buffer.Length < 2)
        {
            return false;
        }

        Span<byte> head = stackalloc byte[2];
        buffer.Slice(0, 2).CopyTo(head);
        return head[0] is >= TlsFirstContentType and <= TlsLastContentType && head[1] == TlsMajorVersion;
    }
}
