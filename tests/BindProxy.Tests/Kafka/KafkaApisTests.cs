using BindProxy.Kafka.Protocol;
using BindProxy.Kafka.Rewriting;

namespace BindProxy.Tests.Kafka;

/// <summary>The one table of Kafka APIs, and the places that read it.</summary>
public sealed class KafkaApisTests
{
    [Fact]
    public void Every_key_has_its_own_row_and_name()
    {
        Assert.Equal(Enumerable.Range(0, KafkaApis.All.Count).Select(k => (short)k), KafkaApis.All.Select(a => a.Key));
        Assert.Equal(KafkaApis.All.Count, KafkaApis.All.Select(a => a.Name).Distinct().Count());
        Assert.Equal("ApiVersions", KafkaApis.NameOf(KafkaApiKeys.ApiVersions));
        Assert.Equal("DescribeCluster", KafkaApis.NameOf(KafkaApiKeys.DescribeCluster));
        Assert.Equal(KafkaApis.UnknownName, KafkaApis.NameOf(-1));
        Assert.Equal(KafkaApis.UnknownName, KafkaApis.NameOf(short.MaxValue));
    }

    [Fact]
    public void The_named_keys_match_the_table()
    {
        foreach (var field in typeof(KafkaApiKeys).GetFields())
        {
            Assert.Equal(field.Name, KafkaApis.NameOf((short)field.GetValue(null)!));
        }
    }

    [Fact]
    public void ApiVersions_is_capped_to_the_newest_version_the_model_knows()
    {
        foreach (var api in KafkaApis.All)
        {
            Assert.True(api.IsKnown);
            Assert.Equal(api.MaxVersion, ApiVersionsCap.ModelCap(api.Key));
        }

        Assert.Equal(KafkaApis.Of(KafkaApiKeys.JoinGroup).MaxVersion, ApiVersionsCap.ModelCap(KafkaApiKeys.JoinGroup));
        Assert.Equal(-1, ApiVersionsCap.ModelCap((short)KafkaApis.All.Count));
    }

    [Theory]
    [InlineData(KafkaApiKeys.Metadata, 8, false)]
    [InlineData(KafkaApiKeys.Metadata, 9, true)]
    [InlineData(KafkaApiKeys.SaslHandshake, 1, false)]
    [InlineData(KafkaApiKeys.DescribeCluster, 0, true)]
    [InlineData(200, 0, true)] // keys added since KIP-482 are flexible from v0
    public void Flexible_versions_come_from_the_table(short key, short version, bool flexible) =>
        Assert.Equal(flexible, KafkaApis.Of(key).IsFlexible(version));
}
