using System.CommandLine;

namespace BindProxy.Demo;

/// <summary>The demo's command line: <c>--keep</c>, and the <c>--help</c> and <c>--version</c> every command has.</summary>
internal static class DemoCommand
{
    /// <summary>After Ctrl-C, how long the demo may take to close its clients, the proxy and the cluster before the process ends anyway.</summary>
    public static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(20);

    public static RootCommand Create(TextWriter output)
    {
        var keep = new Option<bool>("--keep")
        {
            Description = "After the checks, keep the cluster, the proxy and both clients running, with a message produced and consumed " +
                "every second, so the printed tshark, tcpdump and Wireshark filters show live traffic. Ctrl-C to stop.",
        };

        var root = new RootCommand(
            "BindProxy demo: starts a 3-broker Kafka cluster in this process (librdkafka's mock cluster), BindProxy in Kafka mode in front " +
            "of it with source address 127.0.0.2, and a producer and a consumer group that know only the proxy's address. Prints the " +
            "connection table checked against the kernel's, and the capture commands that show only these clients' traffic. " +
            "Exit code 0: every check passed; 1: a check failed; 2: the cluster or the proxy could not start.")
        {
            keep,
        };
        root.SetAction((parse, cancellationToken) => DemoRunner.RunAsync(output, parse.GetValue(keep), cancellationToken));
        return root;
    }
}
