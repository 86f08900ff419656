using System.Buffers;

namespace BindProxy.Kafka.Protocol;

/// <summary>The codec of a record batch (attributes bits 0-2); values past Zstd are Kafka's to define.</summary>
internal enum KafkaCompression : byte
{
    None = 0,
    Gzip = 1,
    Snappy = 2,
    Lz4 = 3,
    Zstd = 4,
}

/// <summary>What reading the next batch of a records field found.</summary>
internal enum RecordBatchStatus
{
    /// <summary>A whole batch; its header is out.</summary>
    Batch,

    /// <summary>No bytes left.</summary>
    End,

    /// <summary>
    /// The bytes left are the start of a batch cut short: a broker ends a Fetch response's records
    /// so when the next batch does not fit the size asked for. Nothing is read from them.
    /// </summary>
    Partial,

    /// <summary>The bytes cannot be a batch (a length below a header's, an unknown magic, a negative count).</summary>
    Malformed,
}

/// <summary>
/// The header of one record batch (magic 2), or of one message of the older message sets (magic 0
/// and 1, shown as a batch of one record), read without touching its records.
/// </summary>
/// <remarks>
/// <code>
/// magic 2:  base_offset int64 | batch_length int32 | partition_leader_epoch int32 | magic int8 (2) | crc uint32 |
///           attributes int16 | last_offset_delta int32 | base_timestamp int64 | max_timestamp int64 |
///           producer_id int64 | producer_epoch int16 | base_sequence int32 | records_count int32 | records...
///           (batch_length counts the bytes after itself: a batch is 12 + batch_length bytes; the header is 61)
/// magic 0/1: offset int64 | message_size int32 | crc int32 | magic int8 | attributes int8 |
///           [timestamp int64, magic 1] | key bytes | value bytes            (12 + message_size bytes)
/// attributes: bits 0-2 compression, 3 timestamp type (log append time), 4 transactional, 5 control batch
/// </code>
/// The magic byte sits 16 bytes in for every format, which is how the two are told apart.
/// </remarks>
internal readonly record struct RecordBatchHeader(
    long BaseOffset,
    int BatchLength,
    int PartitionLeaderEpoch,
    sbyte Magic,
    uint Crc,
    short Attributes,
    int LastOffsetDelta,
    long BaseTimestamp,
    long MaxTimestamp,
    long ProducerId,
    short ProducerEpoch,
    int BaseSequence,
    int RecordCount)
{
    /// <summary>base_offset and batch_length: the bytes a batch has besides those batch_length counts.</summary>
    public const int LogOverhead = 12;

    /// <summary>The bytes of a magic-2 batch header, records count included.</summary>
    public const int Length = 61;

    /// <summary>Where the magic byte sits in every format.</summary>
    public const int MagicOffset = 16;

    /// <summary>The smallest message_size of a magic 0 message: crc, magic, attributes, and null key and value.</summary>
    private const int MinLegacyMessageSize = 4 + 1 + 1 + 4 + 4;

    /// <summary>The whole batch's bytes.</summary>
    public long TotalLength => LogOverhead + (long)BatchLength;

    public KafkaCompression Compression => (KafkaCompression)(Attributes & 0x07);

    /// <summary>The timestamps are the broker's append time, not the producer's create time.</summary>
    public bool LogAppendTime => (Attributes & 0x08) != 0;

    public bool IsTransactional => Magic >= 2 && (Attributes & 0x10) != 0;

    /// <summary>A transaction marker (commit or abort) rather than data.</summary>
    public bool IsControl => Magic >= 2 && (Attributes & 0x20) != 0;

    public long LastOffset => BaseOffset + LastOffsetDelta;

    /// <summary>
    /// Reads the header of the batch at the start of <paramref name="records"/>. The lengths in it are
    /// checked against the bytes there, never used to allocate: a batch that claims more than there
    /// is comes back <see cref="RecordBatchStatus.Partial"/>.
    /// </summary>
    public static RecordBatchStatus TryRead(in ReadOnlySequence<byte> records, out RecordBatchHeader header, out MalformedReason error) =>
        Read(records, records.Length, out header, out error);

    /// <summary>
    /// Reads a batch header from its first bytes alone, for records that pass by as a stream: the
    /// rest of the batch need not be there. <see cref="RecordBatchStatus.Partial"/> means fewer
    /// bytes than the header needs (<see cref="HeaderLength"/> says how many once 17 are in).
    /// </summary>
    public static RecordBatchStatus TryReadHeader(in ReadOnlySequence<byte> start, out RecordBatchHeader header, out MalformedReason error) =>
        Read(start, long.MaxValue, out header, out error);

    /// <summary>The bytes of the header of a batch whose magic byte is <paramref name="magic"/>: what <see cref="TryReadHeader"/> needs.</summary>
    public static int HeaderLength(sbyte magic) => magic switch
    {
        2 => Length,
        1 => MagicOffset + 2 + 8,
        _ => MagicOffset + 2,
    };

    /// <param name="wholeAvailable">The bytes the batch may take: those of <paramref name="records"/>, or unbounded for a header alone.</param>
    private static RecordBatchStatus Read(in ReadOnlySequence<byte> records, long wholeAvailable, out RecordBatchHeader header, out MalformedReason error)
    {
        header = default;
        error = MalformedReason.None;
        if (records.IsEmpty)
        {
            return RecordBatchStatus.End;
        }

        var reader = new KafkaReader(records);
        if (records.Length < MagicOffset + 1)
        {
            return RecordBatchStatus.Partial;
        }

        reader.ReadInt64(out var baseOffset);
        reader.ReadInt32(out var batchLength);
        reader.ReadInt32(out var leaderEpochOrCrc);
        reader.ReadInt8(out var magic);
        if (magic is < 0 or > 2)
        {
            error = MalformedReason.UnsupportedVersion;
            return RecordBatchStatus.Malformed;
        }

        if (magic < 2)
        {
            int minimum = MinLegacyMessageSize + (magic == 1 ? 8 : 0);
            if (batchLength < minimum)
            {
                error = MalformedReason.InvalidLength;
                return RecordBatchStatus.Malformed;
            }

            if (LogOverhead + (long)batchLength > wholeAvailable || records.Length < HeaderLength(magic))
            {
                return RecordBatchStatus.Partial;
            }

            reader.ReadInt8(out var legacyAttributes);
            long timestamp = -1;
            if (magic == 1)
            {
                reader.ReadInt64(out timestamp);
            }

            header = new RecordBatchHeader(baseOffset, batchLength, -1, magic, unchecked((uint)leaderEpochOrCrc), (byte)legacyAttributes, 0,
                timestamp, timestamp, -1, -1, -1, 1);
            return RecordBatchStatus.Batch;
        }

        if (batchLength < Length - LogOverhead)
        {
            error = MalformedReason.InvalidLength;
            return RecordBatchStatus.Malformed;
        }

        if (LogOverhead + (long)batchLength > wholeAvailable || records.Length < Length)
        {
            return RecordBatchStatus.Partial;
        }

        reader.ReadUInt32(out var crc);
        reader.ReadInt16(out var attributes);
        reader.ReadInt32(out var lastOffsetDelta);
        reader.ReadInt64(out var baseTimestamp);
        reader.ReadInt64(out var maxTimestamp);
        reader.ReadInt64(out var producerId);
        reader.ReadInt16(out var producerEpoch);
        reader.ReadInt32(out var baseSequence);
        reader.ReadInt32(out var count);
        if (count < 0 || lastOffsetDelta < 0)
        {
            error = MalformedReason.InvalidLength;
            return RecordBatchStatus.Malformed;
        }

        header = new RecordBatchHeader(baseOffset, batchLength, leaderEpochOrCrc, magic, crc, attributes, lastOffsetDelta,
            baseTimestamp, maxTimestamp, producerId, producerEpoch, baseSequence, count);
        return RecordBatchStatus.Batch;
    }
}

/// <summary>Steps through the batches of a records field, header by header; the records themselves are never read.</summary>
internal struct RecordBatchReader
{
    private ReadOnlySequence<byte> _rest;

    public RecordBatchReader(in ReadOnlySequence<byte> records) => _rest = records;

    /// <summary>Why the last call said <see cref="RecordBatchStatus.Malformed"/>.</summary>
    public MalformedReason Error { get; private set; }

    /// <summary>Bytes not read as batches: a partial last batch, or everything from a malformed one on.</summary>
    public readonly long Remaining => _rest.Length;

    public RecordBatchStatus TryReadNext(out RecordBatchHeader header)
    {
        var status = RecordBatchHeader.TryRead(_rest, out header, out var error);
        Error = error;
        if (status == RecordBatchStatus.Batch)
        {
            _rest = _rest.Slice(header.TotalLength);
        }

        return status;
    }
}

/// <summary>What the batches of one records field add up to.</summary>
/// <param name="PartialBytes">Bytes of a last batch cut short (a Fetch response's), not counted as records.</param>
/// <param name="Error">Set when a batch could not be read; the counts are those of the batches before it.</param>
internal readonly record struct RecordsSummary(
    int Batches,
    long Records,
    long Bytes,
    KafkaCompression Compression,
    long FirstOffset,
    long LastOffset,
    long ProducerId,
    short ProducerEpoch,
    long MaxTimestamp,
    long PartialBytes,
    MalformedReason Error)
{
    /// <summary>Reads every batch header of <paramref name="records"/>; bounded by the bytes, whatever the headers say.</summary>
    public static RecordsSummary Of(in ReadOnlySequence<byte> records)
    {
        var reader = new RecordBatchReader(records);
        var builder = new Builder();
        while (true)
        {
            var status = reader.TryReadNext(out var batch);
            if (status != RecordBatchStatus.Batch)
            {
                return builder.Build(status == RecordBatchStatus.Partial ? reader.Remaining : 0,
                    status == RecordBatchStatus.Malformed ? reader.Error : MalformedReason.None);
            }

            builder.Add(batch);
        }
    }

    /// <summary>Adds batch headers up one by one, as <see cref="Of"/> reads them or as they stream by.</summary>
    internal struct Builder()
    {
        private int _batches;
        private long _count;
        private long _bytes;
        private KafkaCompression _compression = KafkaCompression.None;
        private long _first = -1;
        private long _last = -1;
        private long _producerId = -1;
        private short _producerEpoch = -1;
        private long _maxTimestamp = -1;

        public void Add(in RecordBatchHeader batch)
        {
            if (_batches == 0)
            {
                _first = batch.BaseOffset;
                _compression = batch.Compression;
                _producerId = batch.ProducerId;
                _producerEpoch = batch.ProducerEpoch;
            }

            _batches++;
            if (!batch.IsControl)
            {
                _count += batch.RecordCount;
            }

            _bytes += batch.TotalLength;
            _last = Math.Max(_last, batch.LastOffset);
            _maxTimestamp = Math.Max(_maxTimestamp, batch.MaxTimestamp);
        }

        public readonly RecordsSummary Build(long partialBytes, MalformedReason error) =>
            new(_batches, _count, _bytes, _compression, _first, _last, _producerId, _producerEpoch, _maxTimestamp, partialBytes, error);
    }
}
