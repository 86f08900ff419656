using System.Buffers;
using BindProxy.Kafka.Conversation;
using BindProxy.Kafka.Protocol;

namespace BindProxy.Tests.Kafka;

/// <summary>
/// A Produce request read as it streams through, in pieces of any size, says what the same frame
/// read whole by the model says: topics, partitions, batches, record counts and bytes.
/// </summary>
public sealed class StreamedProduceReaderTests
{
    public static TheoryData<short> Versions() => [.. Enumerable.Range(3, 9).Select(v => (short)v)];

    [Theory]
    [MemberData(nameof(Versions))]
    public void Any_split_of_a_produce_request_gives_what_the_model_gives_for_it_whole(short version)
    {
        var big = RecordFrames.Batches(100, (500, 70_000, 0x0004), (3, 20, 0), (1, 5, 0x0020));
        var small = RecordFrames.Batches(7, (2, 10, 0));
        var frame = RecordFrames.Produce(version, 9, "txn", ("orders", [(0, big), (1, null), (2, [])]), (new string('t', 300), [(5, small), (6, big[..80])]));
        var whole = Whole(frame, out var header);
        Assert.NotNull(whole);
        Assert.Equal(503 + 2, whole.Records); // the control batch's record is not counted; the cut batch is partial bytes

        var random = new Random(version);
        for (int round = 0; round < 50; round++)
        {
            var cuts = Enumerable.Range(0, random.Next(1, 12)).Select(_ => random.Next(frame.Length + 1)).Append(0).Append(frame.Length).Distinct().Order().ToArray();
            var reader = new StreamedProduceReader(header, frame.Length);
            for (int i = 1; i < cuts.Length; i++)
            {
                Assert.False(reader.IsComplete);
                reader.Feed(TestSupport.Segmented(frame[cuts[i - 1]..cuts[i]], [random.Next(cuts[i] - cuts[i - 1] + 1)]));
            }

            Assert.True(reader.IsComplete);
            var streamed = reader.ToBody(null, out var note);
            Assert.True(note is null, $"{note} (frame {frame.Length} bytes, cuts {string.Join(",", cuts)})");
            Assert.NotNull(streamed);
            AssertSame(whole, streamed);
        }
    }

    [Fact]
    public void A_body_that_cannot_be_read_says_why_and_where()
    {
        var frame = RecordFrames.Produce(9, 1, null, ("orders", [(0, RecordFrames.Batches(0, (1, 10, 0)))]));
        Whole(frame, out var header);

        // The records field claims more bytes than the frame has left.
        var forged = (byte[])frame.Clone();
        int recordsLength = Array.LastIndexOf(forged, (byte)(RecordFrames.Batches(0, (1, 10, 0)).Length + 1));
        forged[recordsLength] = 0x7F;
        var reader = new StreamedProduceReader(header, forged.Length);
        reader.Feed(new ReadOnlySequence<byte>(forged));
        Assert.Null(reader.ToBody(null, out var note));
        Assert.Equal($"the Produce v9 request body cannot be read: Truncated at byte {recordsLength}", note);

        // Fewer bytes than the frame has, so far: not finished, and it says so.
        reader = new StreamedProduceReader(header, frame.Length);
        reader.Feed(new ReadOnlySequence<byte>(frame, 0, 40));
        Assert.False(reader.IsComplete);
        Assert.Null(reader.ToBody(null, out note));
        Assert.Equal($"streamed through ({frame.Length} bytes), still passing (40 seen)", note);
    }

    private static ExchangeBody? Whole(byte[] frame, out KafkaRequestHeader header)
    {
        Assert.Equal(MalformedReason.None, KafkaRequestHeader.TryParse(new ReadOnlySequence<byte>(frame), out header));
        var body = ExchangeDecoder.Request(new ReadOnlySequence<byte>(frame), header, null, out var note);
        Assert.Null(note);
        return body;
    }

    internal static void AssertSame(ExchangeBody expected, ExchangeBody actual)
    {
        Assert.Equal(expected.Topics.Count, actual.Topics.Count);
        for (int t = 0; t < expected.Topics.Count; t++)
        {
            Assert.Equal(expected.Topics[t].Name, actual.Topics[t].Name);
            Assert.Equal(expected.Topics[t].Partitions, actual.Topics[t].Partitions);
        }

        Assert.Equal(expected.Records, actual.Records);
        Assert.Equal(expected.RecordBytes, actual.RecordBytes);
        Assert.Equal(expected.OmittedTopics, actual.OmittedTopics);
        Assert.Equal(expected.OmittedPartitions, actual.OmittedPartitions);
        Assert.Empty(actual.Errors);
    }
}
