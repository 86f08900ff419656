using System.Buffers;
using BindProxy.Kafka.Framing;

namespace BindProxy.Tests.Kafka;

public sealed class KafkaFrameReaderTests
{
    private static byte[] Frame(int bodyLength, byte fill) =>
        new WireWriter().Raw(Enumerable.Repeat(fill, bodyLength).ToArray()).ToFrame();

    [Fact]
    public void Two_frames_split_at_every_byte_boundary_are_read_whole()
    {
        var first = Frame(10, 0xAA);
        var second = Frame(3, 0xBB);
        var stream = first.Concat(second).ToArray();

        for (var cut = 0; cut <= stream.Length; cut++)
        {
            // Feed the stream in two chunks cut at `cut`, as a pipe would.
            var frames = ReadAll(stream, [cut]);
            Assert.Equal([first, second], frames);
        }
    }

    [Fact]
    public void Frames_in_one_byte_segments_are_read_whole_and_are_slices()
    {
        var first = Frame(10, 0xAA);
        var second = Frame(0, 0);
        var buffer = TestSupport.ByteByByte(first.Concat(second).ToArray());

        Assert.Equal(FrameReadStatus.Frame, KafkaFrameReader.TryReadFrame(ref buffer, 1024, out var frame, out _));
        Assert.False(frame.IsSingleSegment);
        Assert.Equal(first, frame.ToArray());
        Assert.Equal(FrameReadStatus.Frame, KafkaFrameReader.TryReadFrame(ref buffer, 1024, out frame, out _));
        Assert.Equal(second, frame.ToArray());
        Assert.True(buffer.IsEmpty);
    }

    [Fact]
    public void Partial_input_needs_more_data_and_reports_how_much()
    {
        var frame = Frame(10, 1);
        for (var length = 0; length < frame.Length; length++)
        {
            var buffer = new ReadOnlySequence<byte>(frame, 0, length);
            Assert.Equal(FrameReadStatus.NeedMoreData, KafkaFrameReader.TryReadFrame(ref buffer, 1024, out _, out var error));
            Assert.Equal(FrameError.None, error);
            Assert.Equal(length, buffer.Length);
            var expectedNeed = length < 4 ? 4 - length : frame.Length - length;
            Assert.Equal(expectedNeed, KafkaFrameReader.BytesNeeded(buffer));
        }

        Assert.Equal(0, KafkaFrameReader.BytesNeeded(new ReadOnlySequence<byte>(frame)));
    }

    [Fact]
    public void Oversized_frame_is_rejected_before_its_body_arrives()
    {
        var buffer = new ReadOnlySequence<byte>(new WireWriter().Int32(1025).ToArray());
        Assert.Equal(FrameReadStatus.Error, KafkaFrameReader.TryReadFrame(ref buffer, 1024, out _, out var error));
        Assert.Equal(FrameError.TooLarge, error);
    }

    [Fact]
    public void Frame_of_exactly_the_limit_is_accepted()
    {
        var buffer = new ReadOnlySequence<byte>(Frame(1024, 7));
        Assert.Equal(FrameReadStatus.Frame, KafkaFrameReader.TryReadFrame(ref buffer, 1024, out var frame, out _));
        Assert.Equal(1028, frame.Length);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(int.MinValue)]
    public void Negative_size_is_an_error(int size)
    {
        var buffer = new ReadOnlySequence<byte>(new WireWriter().Int32(size).ToArray());
        Assert.Equal(FrameReadStatus.Error, KafkaFrameReader.TryReadFrame(ref buffer, int.MaxValue, out _, out var error));
        Assert.Equal(FrameError.NegativeSize, error);
    }

    [Theory]
    [InlineData(new byte[] { 0x16, 0x03 })]
    [InlineData(new byte[] { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01 })]
    [InlineData(new byte[] { 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46 })]
    public void Tls_records_are_recognised_even_with_a_huge_limit(byte[] bytes)
    {
        var buffer = new ReadOnlySequence<byte>(bytes);
        Assert.Equal(FrameReadStatus.Error, KafkaFrameReader.TryReadFrame(ref buffer, int.MaxValue, out _, out var error));
        Assert.Equal(FrameError.LooksLikeTls, error);
    }

    [Fact]
    public void Tls_check_applies_when_the_record_is_split_across_segments()
    {
        var buffer = TestSupport.ByteByByte([0x16, 0x03, 0x01, 0x00, 0xA5]);
        Assert.Equal(FrameReadStatus.Error, KafkaFrameReader.TryReadFrame(ref buffer, 100, out _, out var error));
        Assert.Equal(FrameError.LooksLikeTls, error);
    }

    private static List<byte[]> ReadAll(byte[] stream, int[] cuts)
    {
        var frames = new List<byte[]>();
        var buffered = Array.Empty<byte>();
        var start = 0;
        foreach (var end in cuts.Append(stream.Length))
        {
            buffered = buffered.Concat(stream[start..end]).ToArray();
            start = end;
            var buffer = TestSupport.Segmented(buffered, [1, buffered.Length / 2]);
            while (KafkaFrameReader.TryReadFrame(ref buffer, 1024, out var frame, out _) == FrameReadStatus.Frame)
            {
                frames.Add(frame.ToArray());
            }

            buffered = buffer.ToArray();
        }

        Assert.Empty(buffered);
        return frames;
    }
}
