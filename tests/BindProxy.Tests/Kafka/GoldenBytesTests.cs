namespace BindProxy.Tests.Kafka;

public sealed class GoldenBytesTests(GoldenCapture capture) : IClassFixture<GoldenCapture>
{
    [Fact]
    public void Summary()
    {
        if (capture.SkipReason is not null)
        {
            Assert.Skip(capture.SkipReason);
        }

        foreach (var note in capture.Notes)
        {
            TestContext.Current.TestOutputHelper?.WriteLine(note);
        }

        foreach (var g in capture.Exchanges.GroupBy(e => (e.ApiKey, e.ApiVersion)).OrderBy(g => g.Key))
        {
            TestContext.Current.TestOutputHelper?.WriteLine($"{g.Key.ApiKey} v{g.Key.ApiVersion}: {g.Count()} max {g.Max(e => e.Response.Length)}");
            File.WriteAllText($"/tmp/golden-{g.Key.ApiKey}-{g.Key.ApiVersion}.hex", string.Join("\n", g.Select(e => Convert.ToHexString(e.Response))));
        }
    }
}
