using System.Collections.Concurrent;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using BindProxy.Demo;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Kafka;

/// <summary>The demo (src/BindProxy.Demo), run in this process: what a newcomer sees must be true.</summary>
public sealed partial class DemoTests
{
    [Fact]
    public async Task The_demo_produces_and_consumes_through_the_proxy_and_prints_a_connection_table_from_the_source_address()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        var output = new StringWriter();
        using var deadline = new CancellationTokenSource(DemoRunner.Deadline);

        var exitCode = await DemoRunner.RunAsync(output, deadline.Token).WaitAsync(DemoRunner.Deadline + TimeSpan.FromSeconds(15));
        var text = output.ToString();

        Assert.True(exitCode == DemoRunner.Success, $"exit code {exitCode}:\n{text}");
        Assert.Contains("demo finished: all checks passed", text);

        // A newcomer's first run reads clean: no warning, no note in protocol numbers.
        Assert.DoesNotContain("[proxy WARN]", text);
        Assert.DoesNotContain("api key", text);
        Assert.Equal(DemoRunner.Messages, Regex.Count(text, "^produced 'message \\d+'", RegexOptions.Multiline));
        Assert.Equal(DemoRunner.Messages, Regex.Count(text, "^consumed 'message \\d+'", RegexOptions.Multiline));

        // Rows: client → proxy listener | 127.0.0.2 → broker, confirmed in the kernel's table; all three brokers in use.
        var rows = ConnectionRow().Matches(text);
        Assert.True(rows.Count >= 3, text);
        Assert.Equal(["1", "2", "3"], rows.Select(r => r.Groups["node"].Value).Distinct().Order());
        Assert.Contains("from anywhere else", text);
        Assert.Matches(@"Kernel TCP table: (\d+) connection\(s\) to broker ports, \1 from 127\.0\.0\.2, 0 from anywhere else\.", text);

        Assert.Matches(@"tshark -i lo -f 'host 127\.0\.0\.2 and \(tcp port \d+ or tcp port \d+ or tcp port \d+\)'", text);
        Assert.Matches(@"tcpdump -i lo -n 'host 127\.0\.0\.2 and \(", text);

        // Wireshark 4 wants set members separated by commas.
        Assert.Matches(@"Wireshark display filter: ip\.addr==127\.0\.0\.2 && tcp\.port in \{\d+,\d+,\d+\}", text);
    }

    [Fact]
    public async Task Help_describes_the_demo_and_its_options_without_running_it()
    {
        var output = new StringWriter();
        var started = Stopwatch.StartNew();

        int exitCode = await DemoCommand.Create(output).Parse(["--help"])
            .InvokeAsync(new InvocationConfiguration { Output = output, Error = output }, TestContext.Current.CancellationToken);
        var text = output.ToString();

        Assert.True(exitCode == 0, text);
        Assert.Contains("--keep", text);
        Assert.Contains("Ctrl-C", text);
        Assert.Contains("--help", text);
        Assert.Contains("127.0.0.2", text);
        Assert.DoesNotContain("Kafka cluster (librdkafka mock", text);
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(5), $"--help took {started.Elapsed}");
    }

    /// <summary>
    /// <c>--keep</c>, as a user runs it: after the checks the clients keep producing and consuming,
    /// the capture command the demo printed (run exactly as printed, where tshark and root are at
    /// hand) sees that traffic, and Ctrl-C (SIGINT) ends the demo with exit code 0.
    /// </summary>
    [Fact]
    public async Task Keep_serves_live_traffic_the_printed_capture_command_sees_until_SIGINT()
    {
        MockClusterTests.SkipUnlessNativeLibrary();
        bool capture = ExternalTool.RequireAll || (ExternalTool.Find("tshark") is not null && Environment.UserName == "root");

        // A process started from a shell's background job inherits SIGINT ignored, and .NET then
        // leaves it so; the demo gets the default disposition, as in a terminal.
        var info = new ProcessStartInfo(OperatingSystem.IsLinux() ? "env" : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        if (OperatingSystem.IsLinux())
        {
            info.ArgumentList.Add("--default-signal=INT");
            info.ArgumentList.Add("dotnet");
        }

        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "BindProxy.Demo.dll"));
        info.ArgumentList.Add("--keep");
        using var demo = Process.Start(info)!;
        var lines = new ConcurrentQueue<string>();
        var readers = Task.WhenAll(Collect(demo.StandardOutput, lines), Collect(demo.StandardError, lines));
        try
        {
            await WaitForLineAsync(readers, lines, "demo finished: all checks passed", DemoRunner.Deadline + TimeSpan.FromSeconds(15));
            var printed = lines.Select(l => l.Trim()).First(l => l.StartsWith("tshark -i lo -f '", StringComparison.Ordinal));
            await WaitForLineAsync(readers, lines, "live: ", TimeSpan.FromSeconds(30));

            if (capture)
            {
                var tshark = ExternalTool.Require("tshark");
                ExternalTool.RequireRoot("capturing on the loopback interface");
                var filter = printed["tshark -i lo -f '".Length..^1];
                var packets = await ExternalTool.RunAsync(tshark, "-i", "lo", "-f", filter, "-l", "-c", "5", "-a", "duration:30");
                var seen = packets.Split('\n', StringSplitOptions.RemoveEmptyEntries);
                Assert.True(seen.Length >= 5, $"'{printed}' saw {seen.Length} packet(s):\n{packets}");
                Assert.All(seen, packet => Assert.Contains("127.0.0.2", packet, StringComparison.Ordinal));
            }

            using (var interrupt = Process.Start("kill", ["-INT", demo.Id.ToString(CultureInfo.InvariantCulture)]))
            {
                await interrupt.WaitForExitAsync(TestContext.Current.CancellationToken);
            }

            await demo.WaitForExitAsync(TestContext.Current.CancellationToken).WaitAsync(DemoCommand.StopTimeout);
            await readers.WaitAsync(TimeSpan.FromSeconds(10));
            var text = string.Join("\n", lines);
            Assert.True(demo.ExitCode == DemoRunner.Success, $"exit code {demo.ExitCode}:\n{text}");
            Assert.Contains("Press Ctrl-C to stop.", text);
            Assert.Matches(@"stopped after \d+ live message\(s\) produced and \d+ consumed", text);
        }
        finally
        {
            if (!demo.HasExited)
            {
                demo.Kill(entireProcessTree: true);
            }
        }
    }

    private static async Task Collect(StreamReader reader, ConcurrentQueue<string> lines)
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            lines.Enqueue(line);
        }
    }

    /// <summary>Waits for a line with <paramref name="fragment"/>; fails at once if the output ends (the demo exited) first.</summary>
    private static async Task WaitForLineAsync(Task readers, ConcurrentQueue<string> lines, string fragment, TimeSpan timeout)
    {
        bool found = false;
        await Poll.UntilAsync(
            () =>
            {
                // Looked at before the lines: once the readers are done, every line is in the queue.
                bool ended = readers.IsCompleted;
                found = lines.Any(l => l.Contains(fragment, StringComparison.Ordinal));
                return found || ended;
            },
            () => $"a line with '{fragment}'; output so far:\n{string.Join("\n", lines)}",
            timeout);
        Assert.True(found, $"the output ended (the demo exited) before a line with '{fragment}'; output:\n{string.Join("\n", lines)}");
    }

    [GeneratedRegex(@"^\s+127\.0\.0\.1:\d+\s+127\.0\.0\.1:\d+\s+127\.0\.0\.2:\d+\s+127\.0\.0\.1:\d+\s+(?<node>[123])\s+demo-(producer|consumer)\s+ESTABLISHED$", RegexOptions.Multiline)]
    private static partial Regex ConnectionRow();
}
