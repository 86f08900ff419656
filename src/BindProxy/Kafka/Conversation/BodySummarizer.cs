using System.Buffers;
using BindProxy.Kafka.Protocol;

namespace BindProxy.Kafka.Conversation;

/// <summary>
/// Pulls topics, partitions, error codes, record counts and throttle time out of any message
/// through <see cref="IKafkaVisitor"/>, by the field names Kafka's definitions use, with no code
/// per API:
/// <list type="bullet">
/// <item>a struct is a topic when it has a <c>TopicName</c>, <c>Topic</c> or <c>TopicId</c> field, or a
/// <c>Name</c> field and either a name with "Topic" in it or partitions under it;</item>
/// <item>a struct is a partition when it has a <c>PartitionIndex</c>, <c>Partition</c>, <c>PartitionId</c>
/// or <c>Index</c> field and sits in a topic or in an array with "Partition" in its name; an integer
/// array <c>Partitions</c> or <c>PartitionIndexes</c> in a topic lists partitions too;</item>
/// <item>an error is any integer field named <c>ErrorCode</c> or ending so, placed under the topic and
/// partition it sits in.</item>
/// </list>
/// </summary>
internal sealed class BodySummarizer : IKafkaVisitor
{
    private readonly List<Frame> _stack = [new Frame("")];
    private readonly List<TopicDetail> _topics = [];
    private readonly List<ErrorAt> _errors = [];
    private readonly List<string> _arrays = [];
    private int? _throttle;
    private int _omittedTopics;
    private int _omittedPartitions;
    private int _omittedErrors;
    private int _partitions;

    public void Integer(string name, long value)
    {
        var frame = _stack[^1];
        if (_arrays.Count > 0 && frame.ArrayDepth < _arrays.Count)
        {
            // An element of an integer array: partitions when the array lists them.
            if (name is "Partitions" or "PartitionIndexes")
            {
                frame.Partitions.Add(PartitionDetail.Of((int)value));
            }

            return;
        }

        switch (name)
        {
            case "ThrottleTimeMs" when _stack.Count == 1:
                _throttle = (int)Math.Clamp(value, int.MinValue, int.MaxValue);
                break;
            case "PartitionIndex" or "Partition" or "PartitionId" or "Index":
                frame.Partition ??= (int)value;
                break;
            default:
                if (name.EndsWith("ErrorCode", StringComparison.Ordinal))
                {
                    frame.Errors.Add(new ErrorAt((short)value, -1, -1));
                }

                break;
        }
    }

    public void Boolean(string name, bool value)
    {
    }

    public void Float(string name, double value)
    {
    }

    public void String(string name, string? value)
    {
        var frame = _stack[^1];
        if (_arrays.Count > frame.ArrayDepth)
        {
            return;
        }

        if (name is "TopicName" or "Topic")
        {
            frame.TopicName ??= value;
            frame.NamesTopic = true;
        }
        else if (name == "Name")
        {
            frame.TopicName ??= value;
        }
    }

    public void Uuid(string name, Guid value)
    {
        if (name == "TopicId" && _arrays.Count <= _stack[^1].ArrayDepth)
        {
            var frame = _stack[^1];
            frame.TopicId = value;
            frame.NamesTopic = true;
        }
    }

    public void Bytes(string name, byte[]? value)
    {
    }

    public void Records(string name, ReadOnlySequence<byte>? value)
    {
        if (value is { } records)
        {
            _stack[^1].Records = RecordsSummary.Of(records);
        }
    }

    public void BeginStruct(string name) => _stack.Add(new Frame(name) { ArrayDepth = _arrays.Count });

    public void EndStruct()
    {
        var frame = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        var parent = _stack[^1];

        bool isTopic = frame.NamesTopic
            || (frame.TopicName is not null && (frame.Name.Contains("Topic", StringComparison.Ordinal) || frame.Partitions.Count > 0));
        bool isPartition = !isTopic && frame.Partition is { } && (parent.IsTopicLike || frame.Name.Contains("Partition", StringComparison.Ordinal));

        if (isPartition)
        {
            var records = frame.Records;
            parent.Partitions.Add(records is { } r
                ? new PartitionDetail(frame.Partition!.Value, r.Batches, r.Records, r.Bytes, r.Compression, r.ProducerId, r.ProducerEpoch, r.FirstOffset, r.LastOffset)
                : PartitionDetail.Of(frame.Partition!.Value));
            foreach (var error in frame.Errors)
            {
                parent.Errors.Add(error.Partition < 0 ? error with { Partition = frame.Partition!.Value } : error);
            }

            return;
        }

        if (isTopic)
        {
            int index = -1;
            if (_topics.Count < ExchangeBody.MaxTopics)
            {
                var partitions = frame.Partitions;
                if (_partitions + partitions.Count > ExchangeBody.MaxPartitions)
                {
                    int keep = Math.Max(0, ExchangeBody.MaxPartitions - _partitions);
                    _omittedPartitions += partitions.Count - keep;
                    partitions = partitions[..keep];
                }

                _partitions += partitions.Count;
                index = _topics.Count;
                var name = frame.TopicName is { Length: > ExchangeBody.MaxNameLength } longName ? longName[..ExchangeBody.MaxNameLength] : frame.TopicName;
                _topics.Add(new TopicDetail(name, frame.TopicId, partitions));
            }
            else
            {
                _omittedTopics++;
                _omittedPartitions += frame.Partitions.Count;
            }

            foreach (var error in frame.Errors)
            {
                AddError(error.Topic < 0 ? error with { Topic = index } : error);
            }

            return;
        }

        // Any other struct: what it found belongs to the struct around it (a group, a response wrapper).
        parent.Partitions.AddRange(frame.Partitions);
        parent.Errors.AddRange(frame.Errors);
        if (frame.Records is { } own && parent.Records is null)
        {
            parent.Records = own;
        }
    }

    public void BeginArray(string name, int count) => _arrays.Add(name);

    public void EndArray() => _arrays.RemoveAt(_arrays.Count - 1);

    /// <summary>The summary of everything visited; topic ids are named through <paramref name="names"/> when it knows them.</summary>
    public ExchangeBody ToBody(TopicNames? names)
    {
        var root = _stack[0];
        foreach (var error in root.Errors)
        {
            AddError(error);
        }

        root.Errors.Clear();
        if (root.Partitions.Count > 0)
        {
            // Partitions outside any topic (a request that names one topic at the top): kept under an unnamed topic.
            if (_topics.Count < ExchangeBody.MaxTopics)
            {
                _topics.Add(new TopicDetail(null, null, [.. root.Partitions.Take(Math.Max(0, ExchangeBody.MaxPartitions - _partitions))]));
            }
        }

        IReadOnlyList<TopicDetail> topics = _topics;
        if (names is not null)
        {
            topics = [.. _topics.Select(t => t.Name is null && t.Id is { } id && names.TryGet(id, out var name) ? t with { Name = name } : t)];
        }

        return new ExchangeBody(topics, [.. _errors], _throttle, _omittedTopics, _omittedPartitions, _omittedErrors);
    }

    private void AddError(ErrorAt error)
    {
        if (_errors.Count < ExchangeBody.MaxErrors)
        {
            _errors.Add(error);
        }
        else
        {
            _omittedErrors++;
        }
    }

    private sealed class Frame(string name)
    {
        public string Name { get; } = name;

        /// <summary>How many arrays were open when the struct began: deeper ones are the struct's own arrays.</summary>
        public int ArrayDepth { get; init; }

        public string? TopicName { get; set; }

        public Guid? TopicId { get; set; }

        public bool NamesTopic { get; set; }

        public int? Partition { get; set; }

        public RecordsSummary? Records { get; set; }

        public List<PartitionDetail> Partitions { get; } = [];

        public List<ErrorAt> Errors { get; } = [];

        public bool IsTopicLike => NamesTopic || Name.Contains("Topic", StringComparison.Ordinal) || Name == "Responses";
    }
}
