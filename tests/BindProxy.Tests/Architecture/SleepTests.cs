using System.Text.RegularExpressions;
using BindProxy.Tests.Configuration;

namespace BindProxy.Tests.Architecture;

/// <summary>
/// Tests wait for what they need (<see cref="Infrastructure.Poll"/>, a log line, a socket read),
/// never for a fixed time: a sleep is either too short on a loaded machine or wasted on an idle one.
/// A delay stays only where time passing is itself what is tested, and then it is listed here.
/// </summary>
public sealed partial class SleepTests
{
    /// <summary>Files that may delay, how many times, and why. A new delay needs a reason here.</summary>
    private static readonly Dictionary<string, (int Count, string Why)> Delays = new(StringComparer.Ordinal)
    {
        ["Infrastructure/Poll.cs"] = (1, "the polling interval itself"),
        ["Hosting/ReloadTests.cs"] = (1, "paces the traffic that runs through a reload"),
        ["Http/HttpRouteTests.cs"] = (1, "sends the first bytes apart in time, so each arrives on its own"),
        ["Http/HttpTestServer.cs"] = (1, "the silent upstream that RequestTimeout is tested against"),
        ["Kafka/BadInputTests.cs"] = (1, "paces the steady producer"),
        ["Kafka/ConsumerGroupTests.cs"] = (1, "no duplicate delivery arriving for a while is what is tested"),
        ["Kafka/LeaderChangeTests.cs"] = (3, "paces the producer, samples the socket table, keeps a broker down for a while"),
        ["Forwarding/ForwardingTests.cs"] = (3, "traffic spaced in time past the IdleTimeout is what is tested"),
        ["Forwarding/ClientLeavesDuringConnectTests.cs"] = (3, "waits by sleeping; to be converted to Poll"),
        ["Forwarding/RelayFailureTests.cs"] = (2, "waits by sleeping; to be converted to Poll"),
        ["Forwarding/RelayTests.cs"] = (8, "waits by sleeping; to be converted to Poll"),
        ["Transport/DescriptorBudgetTests.cs"] = (3, "a full descriptor table held for a while is tested; the other waits are to be converted to Poll"),
        ["Transport/ListenerTests.cs"] = (3, "waits by sleeping; to be converted to Poll"),
    };

    [Fact]
    public void No_test_sleeps_a_thread()
    {
        var offenders = TestSources()
            .Where(f => f.Path != "Infrastructure/Poll.cs" && ThreadSleep().IsMatch(f.Text))
            .Select(f => f.Path)
            .ToList();

        Assert.True(offenders.Count == 0, "a blocking sleep in " + string.Join(", ", offenders) + "; wait with Poll.UntilAsync for the condition instead");
    }

    [Fact]
    public void Tests_delay_only_where_time_passing_is_what_is_tested()
    {
        var found = TestSources()
            .Select(f => (f.Path, Count: TaskDelay().Count(f.Text)))
            .Where(f => f.Count > 0)
            .ToDictionary(f => f.Path, f => f.Count, StringComparer.Ordinal);

        var problems = found.Where(f => !Delays.TryGetValue(f.Key, out var allowed) || allowed.Count != f.Value)
            .Select(f => $"{f.Key}: {f.Value} delay(s), {(Delays.TryGetValue(f.Key, out var allowed) ? $"listed with {allowed.Count}" : "not listed")}")
            .Concat(Delays.Keys.Where(path => !found.ContainsKey(path)).Select(path => $"{path}: listed, but it has no delay any more"))
            .ToList();

        Assert.True(problems.Count == 0,
            "wait with Poll.UntilAsync for the condition instead of a delay, or list a delay that is what is tested, with the reason:\n" + string.Join("\n", problems));
    }

    /// <summary>Every C# file of the test project, by its path under the project folder.</summary>
    private static IEnumerable<(string Path, string Text)> TestSources()
    {
        var project = Path.Combine(ShippedConfigTests.RepositoryRoot(), "tests", "BindProxy.Tests");
        var files = Directory.EnumerateFiles(project, "*.cs", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(project, f).Replace('\\', '/'))
            .Where(f => !f.StartsWith("bin/", StringComparison.Ordinal) && !f.StartsWith("obj/", StringComparison.Ordinal))
            .ToList();
        Assert.True(files.Count > 50, $"found only {files.Count} test sources under {project}");
        return files.Select(f => (f, File.ReadAllText(Path.Combine(project, f))));
    }

    [GeneratedRegex(@"\bThread\s*\.\s*Sleep\s*\(")]
    private static partial Regex ThreadSleep();

    /// <summary>A delay, except an endless one: that waits for its cancellation token, not for time.</summary>
    [GeneratedRegex(@"\bTask\s*\.\s*Delay\s*\((?!\s*(System\.Threading\.)?Timeout\.Infinite\b)")]
    private static partial Regex TaskDelay();
}
