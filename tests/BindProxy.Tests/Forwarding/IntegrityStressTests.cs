using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Forwarding;

/// <summary>
/// Every byte arrives, both ways, under the load that once stalled a connection: many connections
/// at once with random sizes and shapes, tiny receive buffers on both sides, half-closes, readers
/// that pause, every core busy and processes starting all the while. Connections end only once
/// their bytes are delivered, and none stalls.
/// </summary>
/// <remarks>
/// A longer run: <c>BINDPROXY_STRESS_ROUNDS=20 BINDPROXY_STRESS_SEED=$RANDOM dotnet test BindProxy.sln --filter IntegrityStressTests</c>.
/// </remarks>
public sealed class IntegrityStressTests
{
    private static int Rounds => int.TryParse(Environment.GetEnvironmentVariable("BINDPROXY_STRESS_ROUNDS"), out int n) && n > 0 ? n : 1;

    private static int Seed => int.TryParse(Environment.GetEnvironmentVariable("BINDPROXY_STRESS_SEED"), out int n) ? n : 2512;

    [Theory]
    [MemberData(nameof(Engines.Tcp), MemberType = typeof(Engines))]
    public async Task Every_byte_of_many_small_buffered_half_closed_connections_arrives_under_load(string engine)
    {
        const int Connections = 100;
        var load = new IntegrityLoad();
        await using var upstream = load.StartUpstream();
        await using var proxy = await TestProxy.StartAsync(upstream.Address, source: "127.0.0.2-127.0.0.9", engine: engine);
        long bytes = 0;
        for (int round = 0; round < Rounds; round++)
        {
            var plans = IntegrityLoad.Plans(Seed + round, Connections, maxBytes: 1024 * 1024);
            IReadOnlyList<IntegrityLoad.Outcome> outcomes;
            await using (var machine = new MachineLoad(TimeSpan.FromMinutes(5)))
            {
                outcomes = await load.RunAsync(proxy.Endpoint(), plans, parallel: 48, patience: TimeSpan.FromSeconds(90));
                Assert.True(machine.Started > 0, "no process was started beside the test");
            }

            var failed = outcomes.Where(o => !o.Ok).ToList();
            Assert.True(failed.Count == 0, $"round {round} (seed {Seed + round}, {engine}): {failed.Count} of {outcomes.Count} connection(s) lost or changed bytes:\n{string.Join("\n", failed)}");
            bytes += plans.Sum(p => (long)p.UpBytes + p.ExpectedDown);
        }

        // Each connection is let go once delivered, none was ever seen stalled, and none was reset for want of a reader.
        await Poll.UntilAsync(() => proxy.Connections.Count == 0, "every connection to be let go", TimeSpan.FromSeconds(30));
        Assert.DoesNotContain(proxy.Logs.Messages, m => m.Contains("stalled:", StringComparison.Ordinal) || m.Contains("flush timeout", StringComparison.Ordinal));
        TestContext.Current.TestOutputHelper?.WriteLine($"{Rounds} round(s) of {Connections} connections, {bytes:N0} bytes verified both ways, 0 stalls");
    }
}
