using BindProxy.Hosting;

namespace BindProxy.Tests.Hosting;

public sealed class ResourceLimitsTests
{
    [Theory]
    [InlineData("32768\t60999\n", 32768, 60999)]
    [InlineData("1024 65535", 1024, 65535)]
    [InlineData("  40000   40000  \n", 40000, 40000)]
    public void Reads_the_port_range_as_the_kernel_writes_it(string text, int first, int last) =>
        Assert.Equal((first, last), ResourceLimits.ParsePortRange(text));

    [Theory]
    [InlineData("")]
    [InlineData("\n")]
    [InlineData("32768")]
    [InlineData("32768\t60999\t1")]
    [InlineData("x 60999")]
    [InlineData("-1 60999")]
    [InlineData("32768 99999999999")]
    [InlineData("0 60999")]
    [InlineData("32768 70000")]
    [InlineData("60999 32768")]
    public void A_range_it_cannot_read_is_null_not_an_exception(string text) =>
        Assert.Null(ResourceLimits.ParsePortRange(text));

    [Fact]
    public void The_machine_range_is_a_valid_one()
    {
        var (first, last) = ResourceLimits.EphemeralPortRange();
        Assert.InRange(first, 1, last);
        Assert.InRange(last, first, 65535);
    }
}
