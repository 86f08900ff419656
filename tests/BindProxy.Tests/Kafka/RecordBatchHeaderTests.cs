using System.Buffers;
using BindProxy.Kafka.Protocol;

namespace BindProxy.Tests.Kafka;

/// <summary>The record-batch header reader: every field read where the format puts it, lengths checked against the bytes, never trusted.</summary>
public sealed class RecordBatchHeaderTests
{
    [Fact]
    public void A_magic_2_batch_header_is_read_field_by_field()
    {
        var bytes = Batch(baseOffset: 42, records: 3, attributes: 0x0013, producerId: 7001, producerEpoch: 4, baseSequence: 9,
            baseTimestamp: 1_700_000_000_000, maxTimestamp: 1_700_000_000_500, recordBytes: 30);

        var status = RecordBatchHeader.TryRead(new ReadOnlySequence<byte>(bytes), out var header, out var error);

        Assert.Equal(RecordBatchStatus.Batch, status);
        Assert.Equal(MalformedReason.None, error);
        Assert.Equal(42, header.BaseOffset);
        Assert.Equal(44, header.LastOffset);
        Assert.Equal(3, header.RecordCount);
        Assert.Equal(KafkaCompression.Lz4, header.Compression);
        Assert.True(header.IsTransactional);
        Assert.False(header.IsControl);
        Assert.Equal(7001, header.ProducerId);
        Assert.Equal(4, header.ProducerEpoch);
        Assert.Equal(9, header.BaseSequence);
        Assert.Equal(1_700_000_000_000, header.BaseTimestamp);
        Assert.Equal(1_700_000_000_500, header.MaxTimestamp);
        Assert.Equal(bytes.Length, header.TotalLength);
    }

    [Fact]
    public void Batches_are_summed_and_a_cut_last_batch_is_counted_as_partial_bytes()
    {
        var first = Batch(baseOffset: 0, records: 2, attributes: 0, recordBytes: 20);
        var second = Batch(baseOffset: 2, records: 5, attributes: 0x0004, recordBytes: 50);
        var third = Batch(baseOffset: 7, records: 1, attributes: 0, recordBytes: 10);
        byte[] all = [.. first, .. second, .. third.AsSpan(0, 40)];

        var summary = RecordsSummary.Of(new ReadOnlySequence<byte>(all));

        Assert.Equal(2, summary.Batches);
        Assert.Equal(7, summary.Records);
        Assert.Equal(first.Length + second.Length, summary.Bytes);
        Assert.Equal(0, summary.FirstOffset);
        Assert.Equal(6, summary.LastOffset);
        Assert.Equal(40, summary.PartialBytes);
        Assert.Equal(MalformedReason.None, summary.Error);
    }

    [Fact]
    public void A_length_larger_than_the_bytes_is_partial_and_allocates_nothing_for_it()
    {
        var bytes = Batch(baseOffset: 0, records: 1, attributes: 0, recordBytes: 10);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(8), int.MaxValue);

        Assert.Equal(RecordBatchStatus.Partial, RecordBatchHeader.TryRead(new ReadOnlySequence<byte>(bytes), out _, out _));
        var summary = RecordsSummary.Of(new ReadOnlySequence<byte>(bytes));
        Assert.Equal(0, summary.Records);
        Assert.Equal(bytes.Length, summary.PartialBytes);
    }

    [Theory]
    [InlineData(3, 49, "UnsupportedVersion")] // magic 3 does not exist
    [InlineData(2, 10, "InvalidLength")] // shorter than a header
    [InlineData(-1, 49, "UnsupportedVersion")]
    public void Bytes_that_cannot_be_a_batch_are_malformed_with_the_reason(int magic, int batchLength, string expected)
    {
        var reason = Enum.Parse<MalformedReason>(expected);
        var bytes = Batch(baseOffset: 0, records: 1, attributes: 0, recordBytes: 0);
        bytes[RecordBatchHeader.MagicOffset] = unchecked((byte)(sbyte)magic);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(8), batchLength);

        Assert.Equal(RecordBatchStatus.Malformed, RecordBatchHeader.TryRead(new ReadOnlySequence<byte>(bytes), out _, out var error));
        Assert.Equal(reason, error);
        Assert.Equal(reason, RecordsSummary.Of(new ReadOnlySequence<byte>(bytes)).Error);
    }

    [Fact]
    public void A_magic_1_message_reads_as_a_batch_of_one_with_its_timestamp()
    {
        var message = new WireWriter().Int64(5).Int32(4 + 1 + 1 + 8 + 4 + 4).Int32(0).Int8(1).Int8(1).Int64(1234).Int32(-1).Int32(-1).ToArray();

        Assert.Equal(RecordBatchStatus.Batch, RecordBatchHeader.TryRead(new ReadOnlySequence<byte>(message), out var header, out _));
        Assert.Equal(1, header.RecordCount);
        Assert.Equal(5, header.BaseOffset);
        Assert.Equal(KafkaCompression.Gzip, header.Compression);
        Assert.Equal(1234, header.MaxTimestamp);
        Assert.Equal(message.Length, header.TotalLength);
    }

    [Fact]
    public void Arbitrary_bytes_never_throw_and_never_read_past_their_end()
    {
        var random = new Random(21);
        for (int i = 0; i < 20_000; i++)
        {
            var bytes = new byte[random.Next(0, 160)];
            random.NextBytes(bytes);
            if (bytes.Length > RecordBatchHeader.MagicOffset && random.Next(2) == 0)
            {
                bytes[RecordBatchHeader.MagicOffset] = 2;
            }

            var summary = RecordsSummary.Of(new ReadOnlySequence<byte>(bytes));
            Assert.True(summary.Bytes + summary.PartialBytes <= bytes.Length);
        }
    }

    /// <summary>A magic-2 batch whose records are <paramref name="recordBytes"/> opaque bytes.</summary>
    internal static byte[] Batch(long baseOffset, int records, short attributes, int recordBytes, long producerId = -1, short producerEpoch = -1,
        int baseSequence = -1, long baseTimestamp = 0, long maxTimestamp = 0) =>
        new WireWriter()
            .Int64(baseOffset)
            .Int32(RecordBatchHeader.Length - RecordBatchHeader.LogOverhead + recordBytes)
            .Int32(0) // partition leader epoch
            .Int8(2)
            .Int32(0) // crc, not checked
            .Int16(attributes)
            .Int32(records - 1)
            .Int64(baseTimestamp)
            .Int64(maxTimestamp)
            .Int64(producerId)
            .Int16(producerEpoch)
            .Int32(baseSequence)
            .Int32(records)
            .Raw(new byte[recordBytes])
            .ToArray();
}
