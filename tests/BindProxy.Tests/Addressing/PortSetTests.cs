using BindProxy.Addressing;
using BindProxy.Wireshark;

namespace BindProxy.Tests.Addressing;

public sealed class PortSetTests
{
    [Theory]
    [InlineData("9092", "9092", "tcp.port==9092", "(tcp port 9092)")]
    [InlineData("9094, 9092-9093,8081", "8081,9092-9094", "tcp.port in {8081,9092..9094}", "(tcp port 8081 or tcp portrange 9092-9094)")]
    [InlineData("9092-9094,9093", "9092-9094", "tcp.port in {9092..9094}", "(tcp portrange 9092-9094)")]
    public void Parses_lists_and_ranges_merged_and_sorted(string text, string normal, string wireshark, string capture)
    {
        Assert.True(PortSet.TryParse(text, out var set, out var error), error);
        Assert.Equal(normal, set.ToString());
        Assert.Equal(wireshark, set.ToWiresharkFilter());
        Assert.Equal(capture, set.ToCaptureFilter());
        Assert.Equal(normal.Replace(",", ", ", StringComparison.Ordinal), set.ToNftElements());
    }

    [Theory]
    [InlineData("", "is empty")]
    [InlineData("0", "'0' is not a port")]
    [InlineData("65536", "'65536' is not a port")]
    [InlineData("9094-9092", "'9094-9092' ends before it starts")]
    [InlineData("90a", "'90a' is not a port")]
    [InlineData("1-2-3", "'1-2-3' is not a port")]
    public void Rejects_what_is_not_a_port_list(string text, string message)
    {
        Assert.False(PortSet.TryParse(text, out _, out var error));
        Assert.Contains(message, error, StringComparison.Ordinal);
    }

    [Fact]
    public void With_adds_a_port_and_keeps_the_set_when_it_is_already_in()
    {
        var set = PortSet.Of(9092);
        Assert.Same(set, set.With(9092));
        var more = set.With(9093).With(8081);
        Assert.Equal("8081,9092-9093", more.ToString());
        Assert.True(more.Contains(9093));
        Assert.False(more.Contains(9094));
    }
}
