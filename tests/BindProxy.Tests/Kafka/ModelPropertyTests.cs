using System.Buffers;
using BindProxy.Kafka.Protocol;
using BindProxy.Kafka.Protocol.Messages;
using FsCheck;
using FsCheck.Fluent;

namespace BindProxy.Tests.Kafka;

/// <summary>
/// The generated model against the schema it came from, for every request and response at every
/// version: random bodies encoded from the schema alone (<see cref="SchemaEncoder"/>) must read and
/// write back byte for byte, and a body built from scratch must write, read and write again the same.
/// </summary>
public sealed class ModelPropertyTests
{
    private const int SamplesPerVersion = 25;

    public static TheoryData<string, short> EveryMessageAndVersion()
    {
        var data = new TheoryData<string, short>();
        foreach (var message in SchemaEncoder.Schema.Messages)
        {
            for (var v = message.ValidVersions.Min; v <= message.ValidVersions.Max; v++)
            {
                data.Add(message.Name, v);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(EveryMessageAndVersion))]
    public void Random_bodies_from_the_schema_read_and_write_back_unchanged(string name, short version)
    {
        var message = SchemaEncoder.Schema.Messages.Single(m => m.Name == name);
        var property = Prop.ForAll(ArbMap.Default.ArbFor<int>(), seed =>
        {
            var body = new SchemaEncoder(message, new Random(seed)).Body(version);
            var (written, problem) = ReadAndWrite(message, body, version);
            return (problem is null && written!.AsSpan().SequenceEqual(body))
                .Label($"seed {seed}: {problem ?? $"written {Convert.ToHexString(written!)}"}, encoded {Convert.ToHexString(body)}");
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(SamplesPerVersion), property);
    }

    [Theory]
    [MemberData(nameof(EveryMessageAndVersion))]
    public void A_body_built_from_scratch_writes_and_reads_back(string name, short version)
    {
        var message = SchemaEncoder.Schema.Messages.Single(m => m.Name == name);
        var writer = new KafkaWriter();
        switch (message.Kind)
        {
            case "request":
                KafkaApis.CreateRequest(message.ApiKey!.Value)!.Write(writer, version);
                break;
            case "response":
                KafkaApis.CreateResponse(message.ApiKey!.Value)!.Write(writer, version);
                break;
            case "header" when name == "RequestHeader":
                new RequestHeaderData().Write(writer, version);
                break;
            default:
                new ResponseHeaderData().Write(writer, version);
                break;
        }

        var (again, problem) = ReadAndWrite(message, writer.ToArray(), version);
        Assert.Null(problem);
        Assert.Equal(writer.ToArray(), again);
    }

    [Fact]
    public void Every_api_key_has_a_request_and_a_response_of_its_own()
    {
        foreach (var api in KafkaApis.All)
        {
            Assert.Equal(api.Key, KafkaApis.CreateRequest(api.Key)!.ApiKey);
            Assert.Equal(api.Key, KafkaApis.CreateResponse(api.Key)!.ApiKey);
        }

        Assert.Null(KafkaApis.CreateRequest((short)KafkaApis.All.Count));
    }

    private static (byte[]? Written, string? Problem) ReadAndWrite(BindProxy.KafkaSchema.MessageDef message, byte[] body, short version)
    {
        var reader = new KafkaReader(new ReadOnlySequence<byte>(body));
        var writer = new KafkaWriter();
        bool ok;
        switch (message.Kind)
        {
            case "request" or "response":
                var model = message.Kind == "request" ? KafkaApis.CreateRequest(message.ApiKey!.Value)! : KafkaApis.CreateResponse(message.ApiKey!.Value)!;
                ok = model.TryRead(ref reader, version) && reader.ExpectEnd();
                if (ok)
                {
                    model.Write(writer, version);
                }

                break;
            case "header" when message.Name == "RequestHeader":
                var request = new RequestHeaderData();
                ok = request.TryRead(ref reader, version) && reader.ExpectEnd();
                if (ok)
                {
                    request.Write(writer, version);
                }

                break;
            default:
                var response = new ResponseHeaderData();
                ok = response.TryRead(ref reader, version) && reader.ExpectEnd();
                if (ok)
                {
                    response.Write(writer, version);
                }

                break;
        }

        return ok ? (writer.ToArray(), null) : (null, $"{reader.Error} at byte {reader.Position} of {body.Length}");
    }
}
