using System.Globalization;
using System.Text.RegularExpressions;
using BindProxy.Demo;
using BindProxy.Tests.Configuration;
using BindProxy.Tests.Infrastructure;
using BindProxy.Tests.Kafka;

namespace BindProxy.Tests.Cli;

/// <summary>
/// What a new user does first, done the way they do it: README's set-up command, read from
/// README.md and run as written in a fresh copy of the repository, from its root, on the shipped
/// configuration, with a real Kafka client (kcat) through it.
/// </summary>
public sealed partial class FirstRunTests
{
    private static readonly TimeSpan BuildAndStart = TimeSpan.FromMinutes(4);
    private static readonly TimeSpan Step = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Readmes_set_up_command_serves_the_shipped_Kafka_route_from_a_fresh_copy()
    {
        var kcat = ExternalTool.Require("kcat");
        MockClusterTests.SkipUnlessNativeLibrary();
        var root = ShippedConfigTests.RepositoryRoot();
        var command = SetUpCommand(File.ReadAllText(Path.Combine(root, "README.md")));
        Assert.StartsWith("dotnet run --project src/BindProxy", command, StringComparison.Ordinal);

        using var copy = new TempDirectory();
        await CopyRepositoryAsync(root, copy.Path);

        // The shipped route points at localhost:9092; here the broker is librdkafka's mock cluster,
        // named through the environment override README documents. The shipped ports
        // (127.0.0.1:19092, admin 127.0.0.1:9901) may belong to a proxy the user keeps running
        // (and do, during the suite: DefaultPortsHeld): the same override gives this run free ports.
        // Nothing else differs.
        using var cluster = MockCluster.Create(3);
        var brokerPorts = KafkaRoute.BrokerPorts(cluster);
        await using var proxy = ProxyProcess.StartShell(command, copy.Path, new Dictionary<string, string>
        {
            ["BINDPROXY_BindProxy__Routes__kafka__Upstream"] = cluster.BrokerAddresses[0],
            ["BINDPROXY_BindProxy__Routes__kafka__Listen"] = "127.0.0.1:0",
            ["BINDPROXY_Admin__Listen"] = "127.0.0.1:0",
        });

        var bootstrap = await proxy.ListeningAsync("kafka", BuildAndStart);
        Assert.Equal(System.Net.IPAddress.Loopback, bootstrap.Address);
        var admin = await proxy.WaitForLineAsync("Admin endpoint on http://127.0.0.1:", Step);
        using (var http = new HttpClient { Timeout = Step })
        {
            var url = Regex.Match(admin, @"http://\S+?/").Value;
            Assert.Equal("ok\n", await http.GetStringAsync(url + "healthz"));
        }

        var listing = await ExternalTool.RunAsync(kcat, "-b", bootstrap.ToString(), "-L", "-m", "10");
        var brokers = BrokerLine().Matches(listing).Select(m => m.Groups["address"].Value).ToList();
        Assert.Equal(3, brokers.Count);
        Assert.All(brokers, address => Assert.StartsWith("127.0.0.1:", address, StringComparison.Ordinal));
        Assert.All(brokerPorts, port => Assert.DoesNotContain($":{port.ToString(CultureInfo.InvariantCulture)}", listing, StringComparison.Ordinal));
        Assert.Contains(proxy.Lines, l => l.Contains("kafka: 127.0.0.1:", StringComparison.Ordinal) && l.Contains("→ 127.0.0.2:", StringComparison.Ordinal));

        proxy.Interrupt();
        Assert.Equal(0, await proxy.WaitForExitAsync(Step));
    }

    [Fact]
    public void Readme_opens_with_the_set_up_commands()
    {
        var readme = File.ReadAllText(Path.Combine(ShippedConfigTests.RepositoryRoot(), "README.md"));
        Assert.Equal("dotnet run --project src/BindProxy", SetUpCommand(readme));
        Assert.Contains("dotnet test BindProxy.sln", SetUpBlock(readme), StringComparison.Ordinal);
    }

    /// <summary>The first fenced block of the "Set up" section.</summary>
    internal static string SetUpBlock(string readme)
    {
        var section = SetUpSection().Match(readme);
        Assert.True(section.Success, "README.md has no '## Set up' section with a fenced block");
        return section.Groups["block"].Value;
    }

    /// <summary>The block's first command line (comments and blank lines skipped).</summary>
    internal static string SetUpCommand(string readme) =>
        SetUpBlock(readme).Split('\n').Select(l => l.Trim()).First(l => l.Length > 0 && !l.StartsWith('#'));

    /// <summary>
    /// The repository's files as a fresh clone would have them (tracked and new files, nothing git
    /// ignores: no bin/ or obj/ of this test run).
    /// </summary>
    private static async Task CopyRepositoryAsync(string root, string destination)
    {
        var listing = await ExternalTool.RunAsync("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard");
        foreach (var file in listing.Split('\0', StringSplitOptions.RemoveEmptyEntries))
        {
            var source = Path.Combine(root, file);
            if (!File.Exists(source))
            {
                continue; // deleted in the working tree
            }

            var target = Path.Combine(destination, file);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(source, target);
        }
    }

    [GeneratedRegex(@"^## Set up\s*$.*?^```\w*\n(?<block>.*?)^```", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex SetUpSection();

    // "  broker 2 at 127.0.0.1:40123" (with " (controller)" on one of them)
    [GeneratedRegex(@"^\s+broker (?<id>\d+) at (?<address>\S+)", RegexOptions.Multiline)]
    private static partial Regex BrokerLine();
}
