using System.Diagnostics;
using BindProxy.Forwarding;

namespace BindProxy.Tests.Forwarding;

public sealed class ConnectionLinesTests
{
    [Fact]
    public void A_burst_is_written_then_the_rate_and_what_is_left_out_is_counted()
    {
        long now = 0;
        var lines = new ConnectionLines(burst: 3, perSecond: 2, clock: () => now);

        Assert.True(lines.TryTake(open: true));
        Assert.True(lines.TryTake(open: false));
        Assert.True(lines.TryTake(open: true));
        Assert.False(lines.TryTake(open: true));
        Assert.False(lines.TryTake(open: false));
        Assert.False(lines.TryTake(open: true));

        // Half a second later, the rate of 2 a second gives one line back.
        now += Stopwatch.Frequency / 2;
        Assert.True(lines.TryTake(open: true));
        Assert.False(lines.TryTake(open: true));

        var skipped = lines.TakeSkipped();
        Assert.Equal((3L, 1L), (skipped!.Value.Opened, skipped.Value.Closed));
        Assert.Equal(TimeSpan.FromSeconds(0.5), skipped.Value.Over);
        Assert.Null(lines.TakeSkipped());

        // A long pause refills to the burst and no further.
        now += Stopwatch.Frequency * 100;
        Assert.Equal(3, Enumerable.Range(0, 10).Count(_ => lines.TryTake(open: true)));
    }
}
