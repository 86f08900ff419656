using System.Diagnostics;
using BindProxy.Tests.Infrastructure;
using BindProxy.Tests.Interception;
using Confluent.Kafka;

namespace BindProxy.Tests.Kafka;

/// <summary>
/// <c>mock-cluster</c> as a process, started as a script or a second terminal starts it in the
/// background: stdin at /dev/null. It serves until SIGTERM.
/// </summary>
public sealed class MockClusterToolTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task With_stdin_at_dev_null_it_keeps_serving_until_SIGTERM()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "-c", $"exec dotnet '{NamespaceRun.DemoDll}' mock-cluster --topic demo < /dev/null" })
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        try
        {
            var stderr = process.StandardError.ReadToEndAsync();
            string? bootstrap = null;
            while (bootstrap is null && await process.StandardOutput.ReadLineAsync().WaitAsync(Prompt) is { } line)
            {
                bootstrap = line.StartsWith("bootstrap ", StringComparison.Ordinal) ? line["bootstrap ".Length..] : null;
            }

            if (bootstrap is null)
            {
                Assert.Fail($"no bootstrap line; the process exited: {process.HasExited}\n{await stderr}");
            }


            // Still there 10 s later: the wait is for the process's exit, which must not come.
            try
            {
                await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
                Assert.Fail($"the mock cluster exited with code {process.ExitCode}, stdin at /dev/null:\n{await stderr}");
            }
            catch (TimeoutException)
            {
            }

            // And still serving: a metadata request answered with the three brokers and the topic.
            // The client goes before the cluster does.
            using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build())
            {
                var metadata = admin.GetMetadata(Prompt);
                Assert.Equal(3, metadata.Brokers.Count);
                Assert.Contains(metadata.Topics, t => t.Topic == "demo");
            }

            using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync();
            }

            await process.WaitForExitAsync().WaitAsync(Prompt);
            Assert.Equal(0, process.ExitCode);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
    }
}
