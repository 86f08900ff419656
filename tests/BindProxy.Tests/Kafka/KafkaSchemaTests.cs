using BindProxy.Kafka.Protocol;
using BindProxy.KafkaSchema;

namespace BindProxy.Tests.Kafka;

/// <summary>The committed schema and the committed generated model agree with the generator.</summary>
public sealed class KafkaSchemaTests
{
    private static string Root => Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../.."));

    [Fact]
    public void The_committed_model_is_what_the_generator_writes_from_the_committed_schema()
    {
        var output = Path.Combine(Root, "src/BindProxy/Kafka/Protocol");
        var files = CSharpGenerator.Generate(SchemaEncoder.Schema);
        foreach (var (path, content) in files)
        {
            Assert.True(content == File.ReadAllText(Path.Combine(output, path)), $"{path} differs from the generator's output; run: dotnet run --project src/BindProxy.KafkaSchema -- generate");
        }

        var generated = Directory.GetFiles(Path.Combine(output, "Messages"), "*.g.cs").Select(f => "Messages/" + Path.GetFileName(f));
        Assert.Empty(generated.Except(files.Select(f => f.Path)));
    }

    [Fact]
    public void The_schema_reads_and_writes_back_unchanged()
    {
        var text = File.ReadAllText(Path.Combine(Root, "src/BindProxy.KafkaSchema/kafka-protocol.schema"));
        Assert.Equal(text, SchemaText.Write(SchemaText.Parse(text)));
    }

    [Fact]
    public void Errors_are_named_and_the_retriable_ones_known()
    {
        Assert.Equal("NOT_LEADER_OR_FOLLOWER", KafkaErrors.NameOf(KafkaErrors.NotLeaderOrFollower));
        Assert.Equal(6, KafkaErrors.NotLeaderOrFollower);
        Assert.Equal(35, KafkaErrors.UnsupportedVersion);
        Assert.True(KafkaErrors.TryGet("not_leader_or_follower", out var notLeader) && notLeader.Retriable);
        Assert.True(KafkaErrors.TryGet(KafkaErrors.TopicAuthorizationFailed, out var denied) && !denied.Retriable);
        Assert.Equal("UNKNOWN_ERROR_CODE_30000", KafkaErrors.NameOf(30000));
        Assert.True(KafkaErrors.All.Count >= 120);
    }
}
