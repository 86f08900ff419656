using System.Buffers;
using System.Buffers.Binary;
using BindProxy.Kafka.Faults;
using BindProxy.Kafka.Protocol;
using BindProxy.Tests.Kafka;
using FsCheck;
using FsCheck.Fluent;

namespace BindProxy.Tests.Faults;

/// <summary>
/// The answers <c>kafka_error</c> makes up with <c>forward: false</c>, for every API whose request
/// names topics and every version the model knows: random requests encoded from the schema alone
/// (<see cref="SchemaEncoder"/>) get an answer that reads back through the model to its last byte,
/// carries the request's correlation id and the error, and names only the request's topics.
/// </summary>
public sealed class KafkaErrorAnswerTests
{
    private const int SamplesPerVersion = 20;

    private static readonly KafkaError s_error = KafkaErrors.TryGet("NOT_LEADER_OR_FOLLOWER", out var e) ? e : throw new InvalidOperationException();

    public static TheoryData<short, short> EveryRequestVersion()
    {
        var data = new TheoryData<short, short>();
        foreach (var api in KafkaApis.All)
        {
            for (var v = api.MinVersion; v <= api.MaxVersion; v++)
            {
                data.Add(api.Key, v);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(EveryRequestVersion))]
    public void An_answer_to_a_request_that_names_topics_reads_back_with_the_error_on_them(short apiKey, short version)
    {
        var message = SchemaEncoder.Schema.Messages.Single(m => m.Kind == "request" && m.ApiKey == apiKey);
        var property = Prop.ForAll(ArbMap.Default.ArbFor<int>(), seed =>
        {
            var body = new SchemaEncoder(message, new Random(seed)).Body(version);
            var request = KafkaApis.CreateRequest(apiKey)!;
            var reader = new KafkaReader(new ReadOnlySequence<byte>(body));
            if (!request.TryRead(ref reader, version))
            {
                return false.Label($"seed {seed}: the request does not read ({reader.Error})");
            }

            var asked = KafkaFaultMessages.Topics(request);
            if (asked.Count == 0)
            {
                return true.Label("no topics");
            }

            int correlationId = seed;
            var answer = KafkaFaultMessages.Answer(request, apiKey, version, correlationId, s_error);
            if (answer is null)
            {
                return false.Label($"seed {seed}: no answer");
            }

            var problem = ReadBack(answer, apiKey, version, correlationId, asked);
            return (problem is null).Label($"seed {seed}: {problem}; answer {Convert.ToHexString(answer)}");
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(SamplesPerVersion), property);
    }

    [Fact]
    public void The_apis_whose_requests_name_topics_are_found_and_answered_on_each_topic_and_partition()
    {
        // A Produce v9 request for topic "t", partitions 0 and 2: the answer names both, with the error.
        var produce = new BindProxy.Kafka.Protocol.Messages.ProduceRequestData
        {
            Acks = -1,
            TimeoutMs = 1000,
            TopicData = [new() { Name = "t", PartitionData = [new() { Index = 0 }, new() { Index = 2 }] }],
        };
        var answer = KafkaFaultMessages.Answer(produce, KafkaApiKeys.Produce, 9, 7, s_error)!;
        var response = new BindProxy.Kafka.Protocol.Messages.ProduceResponseData();
        var reader = new KafkaReader(new ReadOnlySequence<byte>(answer));
        Assert.True(KafkaResponseHeader.TrySkip(ref reader, KafkaApiKeys.Produce, 9) && response.TryRead(ref reader, 9) && reader.End);
        var topic = Assert.Single(response.Responses);
        Assert.Equal("t", topic.Name);
        Assert.Equal([0, 2], topic.PartitionResponses.Select(p => (int)p.Index));
        Assert.All(topic.PartitionResponses, p => Assert.Equal(s_error.Code, p.ErrorCode));

        // The APIs a client sends with topics, each found as such.
        var withTopics = new List<string>();
        foreach (var api in KafkaApis.All)
        {
            var message = SchemaEncoder.Schema.Messages.Single(m => m.Kind == "request" && m.ApiKey == api.Key);
            for (int seed = 0; seed < 20; seed++)
            {
                var body = new SchemaEncoder(message, new Random(seed)).Body(api.MaxVersion);
                var request = KafkaApis.CreateRequest(api.Key)!;
                var r = new KafkaReader(new ReadOnlySequence<byte>(body));
                if (request.TryRead(ref r, api.MaxVersion) && KafkaFaultMessages.Topics(request).Count > 0)
                {
                    withTopics.Add(api.Name);
                    break;
                }
            }
        }

        Assert.Subset(withTopics.ToHashSet(), new HashSet<string> { "Produce", "Fetch", "ListOffsets", "Metadata", "OffsetCommit", "OffsetFetch", "CreateTopics", "DeleteTopics", "DeleteRecords", "OffsetForLeaderEpoch", "TxnOffsetCommit", "CreatePartitions" });
    }

    /// <summary>Null when <paramref name="answer"/> is a whole, well-formed response with the error on the request's topics; else what is wrong.</summary>
    private static string? ReadBack(byte[] answer, short apiKey, short version, int correlationId, List<TopicRef> asked)
    {
        if (BinaryPrimitives.ReadInt32BigEndian(answer) != answer.Length - 4)
        {
            return "the size prefix does not match";
        }

        if (BinaryPrimitives.ReadInt32BigEndian(answer.AsSpan(4)) != correlationId)
        {
            return "another correlation id";
        }

        var reader = new KafkaReader(new ReadOnlySequence<byte>(answer));
        var response = KafkaApis.CreateResponse(apiKey)!;
        if (!KafkaResponseHeader.TrySkip(ref reader, apiKey, version) || !response.TryRead(ref reader, version) || !reader.ExpectEnd())
        {
            return $"it does not read back: {reader.Error} at byte {reader.Position}";
        }

        var seen = new ErrorsAndTopics();
        response.Accept(seen, version);
        if (seen.HasErrorField && !seen.Errors.Contains(s_error.Code))
        {
            return "the error is in none of its error codes";
        }

        if (seen.Errors.Any(code => code != s_error.Code))
        {
            return $"other error codes: {string.Join(", ", seen.Errors)}";
        }

        var names = asked.Select(t => t.Name).Where(n => n is not null).ToHashSet();
        return seen.TopicNames.FirstOrDefault(n => n is not null && n.Length > 0 && !names.Contains(n) && asked.All(t => t.Name is not null)) is { } stranger
            ? $"a topic the request did not name: {stranger}"
            : null;
    }

    private sealed class ErrorsAndTopics : IKafkaVisitor
    {
        public bool HasErrorField { get; private set; }

        public List<short> Errors { get; } = [];

        public List<string?> TopicNames { get; } = [];

        public void Integer(string name, long value)
        {
            if (name == "ErrorCode")
            {
                HasErrorField = true;
                Errors.Add((short)value);
            }
        }

        public void String(string name, string? value)
        {
            if (name is "Topic" or "TopicName")
            {
                TopicNames.Add(value);
            }
        }

        public void Boolean(string name, bool value)
        {
        }

        public void Float(string name, double value)
        {
        }

        public void Uuid(string name, Guid value)
        {
        }

        public void Bytes(string name, byte[]? value)
        {
        }

        public void Records(string name, ReadOnlySequence<byte>? value)
        {
        }

        public void BeginStruct(string name)
        {
        }

        public void EndStruct()
        {
        }

        public void BeginArray(string name, int count)
        {
        }

        public void EndArray()
        {
        }
    }
}
