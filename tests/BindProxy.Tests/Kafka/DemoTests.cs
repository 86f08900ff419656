using System.Text.RegularExpressions;
using BindProxy.Demo;

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

    [GeneratedRegex(@"^\s+127\.0\.0\.1:\d+\s+127\.0\.0\.1:\d+\s+127\.0\.0\.2:\d+\s+127\.0\.0\.1:\d+\s+(?<node>[123])\s+demo-(producer|consumer)\s+ESTABLISHED$", RegexOptions.Multiline)]
    private static partial Regex ConnectionRow();
}
