using System.Text.RegularExpressions;
using BindProxy.Tests.Configuration;

namespace BindProxy.Tests.Architecture;

/// <summary>
/// Tests wait for what they need (<see cref="Infrastructure.Poll"/>, a log line, a socket read),
/// never for a fixed time: a sleep is either too short on a loaded machine or wasted on an idle one.
/// Where time passing is itself what is tested, the test either watches that nothing changes for a
/// while (<see cref="Infrastructure.Poll.SteadyAsync"/>) or drives the clock of what it tests (the
/// connection sweeper takes its time from its caller). The only delay is <c>Poll</c>'s own interval.
/// </summary>
public sealed partial class SleepTests
{
    /// <summary>The one file that waits for time to pass: between two looks at a condition.</summary>
    private const string PollSource = "Infrastructure/Poll.cs";

    [Fact]
    public void No_test_sleeps_a_thread()
    {
        var offenders = TestSources()
            .Where(f => f.Path != PollSource && ThreadSleep().IsMatch(f.Text))
            .Select(f => f.Path)
            .ToList();

        Assert.True(offenders.Count == 0, "a blocking sleep in " + string.Join(", ", offenders) + "; wait with Poll.UntilAsync for the condition instead");
    }

    [Fact]
    public void No_test_delays()
    {
        var offenders = TestSources()
            .Where(f => f.Path != PollSource)
            .Select(f => (f.Path, Count: TaskDelay().Count(f.Text)))
            .Where(f => f.Count > 0)
            .Select(f => $"{f.Path}: {f.Count} delay(s)")
            .ToList();

        Assert.True(offenders.Count == 0,
            "wait with Poll.UntilAsync for the condition, or a real signal, instead of a delay; where time passing is what is tested, " +
            "watch that nothing changes with Poll.SteadyAsync or drive the clock of what is tested:\n" + string.Join("\n", offenders));
    }

    [Fact]
    public void Poll_is_the_one_place_that_waits_for_time()
    {
        var poll = TestSources().Single(f => f.Path == PollSource);
        Assert.Equal(1, TaskDelay().Count(poll.Text));
        const string Task = "Task"; // written apart, so this file holds no delay itself
        Assert.Matches(TaskDelay(), $"await {Task}.Delay(300);");
        Assert.Matches(TaskDelay(), $"await {Task} . Delay ( TimeSpan.FromSeconds(1), ct);");
        Assert.DoesNotMatch(TaskDelay(), $"await {Task}.Delay(Timeout.Infinite, ct);");
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
