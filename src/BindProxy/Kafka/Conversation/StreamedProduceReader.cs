using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using System.Text.Unicode;
using BindProxy.Kafka.Protocol;

namespace BindProxy.Kafka.Conversation;

/// <summary>
/// Reads a Produce request that is streamed through (over <c>KafkaSession.StreamRequestsAbove</c>)
/// as its bytes pass, without keeping them: topics, partitions, and the header of each record
/// batch, so the conversation has record counts and bytes for large requests too. What it gives is
/// what <see cref="ExchangeDecoder.Request"/> gives for the same frame read whole.
/// </summary>
/// <remarks>
/// <code>
/// v0-v2:  acks int16 | timeout_ms int32 | topic_data
/// v3-v8:  transactional_id (int16-length nullable string) | acks | timeout_ms | topic_data
/// v9+:    the same, compact (varint lengths), and tagged fields after each struct
/// topic_data:     [name string | partition_data [index int32 | records (nullable bytes) | tags] | tags] | tags
/// records:        batches, each read by its first 61 bytes (RecordBatchHeader); the rest is skipped
/// </code>
/// A token (an integer, a length, a batch header) that straddles two reads is gathered in a small
/// buffer; everything else is skipped by count. Every length is checked against the bytes the
/// frame has left, so a forged one ends the reading, and nothing is allocated from one.
/// </remarks>
internal sealed class StreamedProduceReader
{
    /// <summary>The bytes of a topic name kept (Kafka allows 249 characters); a longer one is cut.</summary>
    private const int MaxNameBytes = 1024;

    private const int MagicBytes = RecordBatchHeader.MagicOffset + 1;

    private readonly short _version;
    private readonly bool _flexible;
    private readonly long _frameLength;
    private readonly byte[] _scratch = new byte[MaxNameBytes];
    private readonly List<TopicDetail> _topics = [];
    private int _have;
    private int _need;
    private bool _varint;
    private long _position;
    private long _fed;
    private long _skip;
    private Step _step;
    private MalformedReason _error;
    private long _errorAt;

    private int _topicsLeft;
    private int _partitionsLeft;
    private uint _tagsLeft;
    private Step _afterTags;
    private string? _topicName;
    private int _nameLength;
    private List<PartitionDetail> _partitions = [];
    private int _topicPartitions;
    private int _partitionsKept;
    private int _omittedTopics;
    private int _omittedPartitions;
    private int _partitionIndex;
    private long _recordsLeft;
    private RecordsSummary.Builder _records;

    private enum Step
    {
        TransactionalId,
        AcksAndTimeout,
        TopicCount,
        TopicNameLength,
        TopicName,
        PartitionCount,
        PartitionIndex,
        RecordsLength,
        BatchStart,
        BatchHeader,
        TagCount,
        TagKey,
        TagSize,
        PartitionEnd,
        TopicEnd,
        Done,
        Failed,
    }

    /// <param name="header">The request's header, already parsed from its first bytes.</param>
    /// <param name="frameLength">The whole frame's bytes, size prefix included.</param>
    public StreamedProduceReader(in KafkaRequestHeader header, long frameLength)
    {
        _version = header.ApiVersion;
        _flexible = header.IsFlexible;
        _frameLength = frameLength;
        _skip = header.BodyOffset;
        if (_version >= 3)
        {
            ExpectLength(wide: false, Step.TransactionalId);
        }
        else
        {
            Expect(6, Step.AcksAndTimeout);
        }
    }

    /// <summary>Every byte of the frame has been seen.</summary>
    public bool IsComplete => _fed >= _frameLength;

    private long Remaining => _frameLength - _position;

    private bool IsFinished => _step is Step.Done or Step.Failed;

    /// <summary>The frame's next bytes, in order, from its first (size prefix included).</summary>
    public void Feed(in ReadOnlySequence<byte> bytes)
    {
        _fed += bytes.Length;
        foreach (var memory in bytes)
        {
            var span = memory.Span;
            while (!span.IsEmpty && !IsFinished)
            {
                if (_skip > 0)
                {
                    int skipped = (int)Math.Min(_skip, span.Length);
                    span = span[skipped..];
                    _skip -= skipped;
                    _position += skipped;
                    continue;
                }

                if (_varint)
                {
                    // As KafkaReader reads them: at most 5 bytes, the fifth carrying 4 bits.
                    byte b = span[0];
                    span = span[1..];
                    _position++;
                    _scratch[_have++] = b;
                    if (_have == 5 && b > 0x0F)
                    {
                        Fail(MalformedReason.InvalidVarint, _position - _have);
                        continue;
                    }

                    if ((b & 0x80) != 0)
                    {
                        continue;
                    }
                }
                else
                {
                    int take = Math.Min(_need - _have, span.Length);
                    span[..take].CopyTo(_scratch.AsSpan(_have));
                    span = span[take..];
                    _have += take;
                    _position += take;
                    if (_have < _need)
                    {
                        continue;
                    }
                }

                OnToken();
            }
        }

        if (IsComplete && !IsFinished)
        {
            Fail(MalformedReason.Truncated, _position - _have);
        }
    }

    /// <summary>What the request says once <see cref="IsComplete"/>; null with a note when its body could not be read.</summary>
    public ExchangeBody? ToBody(TopicNames? names, out string? note)
    {
        if (_step != Step.Done)
        {
            note = _step == Step.Failed
                ? $"the Produce v{_version} request body cannot be read: {_error} at byte {_errorAt}"
                : $"streamed through ({_frameLength} bytes), still passing ({Math.Min(_fed, _frameLength)} seen)";
            return null;
        }

        note = null;
        return new ExchangeBody(_topics, [], null, _omittedTopics, _omittedPartitions, 0);
    }

    private void OnToken()
    {
        long at = _position - _have;
        switch (_step)
        {
            case Step.TransactionalId:
                if (ReadLength(wide: false, nullable: true, at) is { } transactionalId)
                {
                    _skip = Math.Max(0, transactionalId);
                    Expect(6, Step.AcksAndTimeout);
                }

                break;
            case Step.AcksAndTimeout:
                ExpectLength(wide: true, Step.TopicCount);
                break;
            case Step.TopicCount:
                if (ReadCount(minElementBytes: _flexible ? 3 : 6, at) is { } topics)
                {
                    _topicsLeft = topics;
                    NextTopic();
                }

                break;
            case Step.TopicNameLength:
                if (ReadLength(wide: false, nullable: false, at) is { } nameLength)
                {
                    _nameLength = nameLength;
                    if (nameLength == 0)
                    {
                        _topicName = "";
                        ExpectLength(wide: true, Step.PartitionCount);
                    }
                    else
                    {
                        Expect(Math.Min(nameLength, MaxNameBytes), Step.TopicName);
                    }
                }

                break;
            case Step.TopicName:
                var name = _scratch.AsSpan(0, _have);
                if (_nameLength <= MaxNameBytes && !Utf8.IsValid(name))
                {
                    Fail(MalformedReason.InvalidString, at);
                    break;
                }

                _topicName = Encoding.UTF8.GetString(name);
                if (_topicName.Length > ExchangeBody.MaxNameLength)
                {
                    _topicName = _topicName[..ExchangeBody.MaxNameLength];
                }

                _skip = _nameLength - _have;
                ExpectLength(wide: true, Step.PartitionCount);
                break;
            case Step.PartitionCount:
                if (ReadCount(minElementBytes: _flexible ? 6 : 8, at) is { } partitions)
                {
                    _partitionsLeft = partitions;
                    _partitions = [];
                    _topicPartitions = 0;
                    NextPartition();
                }

                break;
            case Step.PartitionIndex:
                _partitionIndex = BinaryPrimitives.ReadInt32BigEndian(_scratch);
                ExpectLength(wide: true, Step.RecordsLength);
                break;
            case Step.RecordsLength:
                if (ReadLength(wide: true, nullable: true, at) is { } recordsLength)
                {
                    _records = new RecordsSummary.Builder();
                    if (recordsLength < 0)
                    {
                        EndPartition(PartitionDetail.Of(_partitionIndex));
                    }
                    else
                    {
                        _recordsLeft = recordsLength;
                        NextBatch();
                    }
                }

                break;
            case Step.BatchStart:
                OnBatchStart();
                break;
            case Step.BatchHeader:
                OnBatchHeader();
                break;
            case Step.TagCount:
                var count = ReadUVarint();
                if (count > Remaining / 2)
                {
                    Fail(MalformedReason.CountExceedsRemaining, at);
                    break;
                }

                _tagsLeft = count;
                NextTag();
                break;
            case Step.TagKey:
                ExpectVarint(Step.TagSize);
                break;
            case Step.TagSize:
                var size = ReadUVarint();
                if (size > Remaining)
                {
                    Fail(MalformedReason.Truncated, at);
                    break;
                }

                _skip = size;
                _tagsLeft--;
                NextTag();
                break;
            default:
                Fail(MalformedReason.None, at);
                break;
        }
    }

    private void OnBatchStart()
    {
        var status = RecordBatchHeader.TryReadHeader(new ReadOnlySequence<byte>(_scratch, 0, _have), out _, out var error);
        if (status == RecordBatchStatus.Malformed)
        {
            EndRecords(0, error, _have);
            return;
        }

        long total = RecordBatchHeader.LogOverhead + (long)BinaryPrimitives.ReadInt32BigEndian(_scratch.AsSpan(8));
        if (total > _recordsLeft)
        {
            // A last batch cut short: counted as partial bytes, as for a records field read whole.
            EndRecords(_recordsLeft, MalformedReason.None, _have);
            return;
        }

        _need = RecordBatchHeader.HeaderLength((sbyte)_scratch[RecordBatchHeader.MagicOffset]);
        _step = Step.BatchHeader;
        if (_have >= _need)
        {
            OnBatchHeader();
        }
    }

    private void OnBatchHeader()
    {
        var status = RecordBatchHeader.TryReadHeader(new ReadOnlySequence<byte>(_scratch, 0, _have), out var batch, out var error);
        if (status != RecordBatchStatus.Batch)
        {
            EndRecords(0, status == RecordBatchStatus.Malformed ? error : MalformedReason.Truncated, _have);
            return;
        }

        _records.Add(batch);
        _skip = batch.TotalLength - _have;
        _recordsLeft -= batch.TotalLength;
        NextBatch();
    }

    private void NextBatch()
    {
        if (_recordsLeft == 0)
        {
            EndRecords(0, MalformedReason.None);
        }
        else if (_recordsLeft < MagicBytes)
        {
            EndRecords(_recordsLeft, MalformedReason.None);
        }
        else
        {
            Expect(MagicBytes, Step.BatchStart);
        }
    }

    /// <summary>
    /// The records field ends: whatever of it is left is skipped (<paramref name="consumed"/> bytes of
    /// it are already in the token buffer); <paramref name="partialBytes"/> of it are a batch cut short.
    /// </summary>
    private void EndRecords(long partialBytes, MalformedReason error, int consumed = 0)
    {
        _skip += _recordsLeft - consumed;
        _recordsLeft = 0;
        var r = _records.Build(partialBytes, error);
        EndPartition(new PartitionDetail(_partitionIndex, r.Batches, r.Records, r.Bytes, r.Compression, r.ProducerId, r.ProducerEpoch, r.FirstOffset, r.LastOffset));
    }

    private void EndPartition(PartitionDetail partition)
    {
        // Kept within the limits BodySummarizer applies to a body read whole; the rest are counted.
        _topicPartitions++;
        if (_topics.Count < ExchangeBody.MaxTopics && _partitionsKept + _partitions.Count < ExchangeBody.MaxPartitions)
        {
            _partitions.Add(partition);
        }

        if (_flexible)
        {
            BeginTags(Step.PartitionEnd);
        }
        else
        {
            NextPartition();
        }
    }

    private void NextPartition()
    {
        if (_partitionsLeft == 0)
        {
            if (_flexible)
            {
                BeginTags(Step.TopicEnd);
            }
            else
            {
                EndTopic();
            }

            return;
        }

        _partitionsLeft--;
        Expect(4, Step.PartitionIndex);
    }

    private void EndTopic()
    {
        if (_topics.Count < ExchangeBody.MaxTopics)
        {
            _partitionsKept += _partitions.Count;
            _omittedPartitions += _topicPartitions - _partitions.Count;
            _topics.Add(new TopicDetail(_topicName, null, _partitions));
        }
        else
        {
            _omittedTopics++;
            _omittedPartitions += _topicPartitions;
        }

        NextTopic();
    }

    private void NextTopic()
    {
        if (_topicsLeft == 0)
        {
            if (_flexible)
            {
                BeginTags(Step.Done);
            }
            else
            {
                _step = Step.Done;
            }

            return;
        }

        _topicsLeft--;
        _topicName = null;
        ExpectLength(wide: false, Step.TopicNameLength);
    }

    private void BeginTags(Step after)
    {
        _afterTags = after;
        ExpectVarint(Step.TagCount);
    }

    private void NextTag()
    {
        if (_tagsLeft > 0)
        {
            ExpectVarint(Step.TagKey);
            return;
        }

        switch (_afterTags)
        {
            case Step.PartitionEnd:
                NextPartition();
                break;
            case Step.TopicEnd:
                EndTopic();
                break;
            default:
                _step = Step.Done;
                break;
        }
    }

    private void Expect(int bytes, Step step)
    {
        _step = step;
        _need = bytes;
        _have = 0;
        _varint = false;
    }

    private void ExpectVarint(Step step)
    {
        _step = step;
        _have = 0;
        _varint = true;
    }

    /// <summary>A string's int16 length, a records field's or an array's int32 one, or a compact varint (length + 1).</summary>
    private void ExpectLength(bool wide, Step step)
    {
        if (_flexible)
        {
            ExpectVarint(step);
        }
        else
        {
            Expect(wide ? 4 : 2, step);
        }
    }

    /// <summary>The length just read (-1 for null), checked as <see cref="KafkaReader"/> checks it; null after a failure.</summary>
    private int? ReadLength(bool wide, bool nullable, long at)
    {
        long length;
        if (_flexible)
        {
            uint raw = ReadUVarint();
            if (raw > int.MaxValue)
            {
                Fail(MalformedReason.InvalidLength, at);
                return null;
            }

            length = (long)raw - 1;
        }
        else
        {
            length = wide ? BinaryPrimitives.ReadInt32BigEndian(_scratch) : BinaryPrimitives.ReadInt16BigEndian(_scratch);
        }

        if (length < -1 || (length == -1 && !nullable))
        {
            Fail(MalformedReason.InvalidLength, at);
            return null;
        }

        if (length > Remaining)
        {
            Fail(MalformedReason.Truncated, at);
            return null;
        }

        return (int)length;
    }

    /// <summary>An array's element count (not nullable here), no more than the bytes left can hold.</summary>
    private int? ReadCount(int minElementBytes, long at)
    {
        if (ReadLength(wide: true, nullable: false, at) is not { } count)
        {
            return null;
        }

        if (count > Remaining / minElementBytes)
        {
            Fail(MalformedReason.CountExceedsRemaining, at);
            return null;
        }

        return count;
    }

    private uint ReadUVarint()
    {
        uint value = 0;
        for (int i = 0; i < _have; i++)
        {
            value |= (uint)(_scratch[i] & 0x7F) << (7 * i);
        }

        return value;
    }

    private void Fail(MalformedReason reason, long at)
    {
        _step = Step.Failed;
        _error = reason;
        _errorAt = at;
    }
}
