using System.Net;
using BindProxy.Addressing;

namespace BindProxy.Tests.Addressing;

public sealed class EndpointSpecTests
{
    [Theory]
    [InlineData("127.0.0.1:9092", new[] { "127.0.0.1:9092" })]
    [InlineData("[::1]:9092", new[] { "[::1]:9092" })]
    [InlineData("127.0.0.1-127.0.0.3:9000", new[] { "127.0.0.1:9000", "127.0.0.2:9000", "127.0.0.3:9000" })]
    [InlineData("127.0.1.0/30:9000", new[] { "127.0.1.1:9000", "127.0.1.2:9000" })]
    [InlineData("127.0.0.1:1,127.0.0.1:2", new[] { "127.0.0.1:1", "127.0.0.1:2" })]
    public void Expands_to_endpoints(string text, string[] expected)
    {
        Assert.True(EndpointSpec.TryParse(text, allowPortZero: false, out var spec, out var error), error);
        Assert.Equal(expected.Select(IPEndPoint.Parse), spec.Endpoints);
    }

    [Theory]
    [InlineData("127.0.0.1", "has no port")]
    [InlineData("::1:9092", "has no port")]
    [InlineData("127.0.0.1:70000", "port 70000, out of range 1-65535")]
    [InlineData("127.0.0.1:0", "port 0, out of range 1-65535")]
    [InlineData("127.0.0.1:http", "port 'http', which is not a number")]
    [InlineData("127.0.0.0/16:9000", "expands to 65534 endpoints")]
    public void Rejects_bad_endpoints(string text, string expected)
    {
        Assert.False(EndpointSpec.TryParse(text, allowPortZero: false, out _, out var error));
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("localhost:9092", "localhost", null)]
    [InlineData("kafka-1.internal:9092", "kafka-1.internal", null)]
    [InlineData("127.0.0.1:9092", null, "127.0.0.1:9092")]
    [InlineData("127.0.0.1-127.0.0.8:9000", null, "127.0.0.1-127.0.0.8:9000")]
    public void Upstream_is_a_name_or_literal_endpoints(string text, string? host, string? literal)
    {
        Assert.True(UpstreamSpec.TryParse(text, out var spec, out var error), error);
        Assert.Equal(host, spec.Host);
        Assert.Equal(literal, spec.Endpoints?.Text);
    }

    [Fact]
    public void Listen_may_mix_families_but_an_upstream_may_not()
    {
        Assert.True(EndpointSpec.TryParse("127.0.0.1:1,[::1]:1", allowPortZero: false, out var listen, out _));
        Assert.False(listen.IsSingleFamily);
        Assert.False(UpstreamSpec.TryParse("127.0.0.1:1,[::1]:1", out _, out var error));
        Assert.Contains("mixes IPv4 and IPv6", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Upstream_range_fans_out_round_robin()
    {
        Assert.True(UpstreamSpec.TryParse("127.0.0.1-127.0.0.3:9000", out var spec, out _));
        var picks = new List<string>();
        for (int i = 0; i < 4; i++)
        {
            picks.Add((await spec.ResolveAsync(System.Net.Sockets.AddressFamily.InterNetwork, i, CancellationToken.None))[0].ToString());
        }

        Assert.Equal(["127.0.0.1:9000", "127.0.0.2:9000", "127.0.0.3:9000", "127.0.0.1:9000"], picks);
    }

    [Fact]
    public async Task Host_names_resolve_to_the_source_family_only()
    {
        Assert.True(UpstreamSpec.TryParse("localhost:9092", out var spec, out _));
        var v4 = await spec.ResolveAsync(System.Net.Sockets.AddressFamily.InterNetwork, 0, CancellationToken.None);
        Assert.NotEmpty(v4);
        Assert.All(v4, e => Assert.Equal(System.Net.Sockets.AddressFamily.InterNetwork, e.AddressFamily));
    }
}
