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
        root.Subcommands.Add(MockClusterCommand(output));
        root.Subcommands.Add(ClientCommand(output));
        return root;
    }

    /// <summary>The mock cluster as a process of its own, driven on stdin (for trying <c>bindproxy exec</c>, and for tests).</summary>
    private static Command MockClusterCommand(TextWriter output)
    {
        var brokers = new Option<int>("--brokers") { Description = "Brokers, node ids 1..N.", DefaultValueFactory = _ => 3 };
        var topic = new Option<string?>("--topic") { Description = "A topic to create, with partition leaders spread over the brokers." };
        var partitions = new Option<int?>("--partitions") { Description = "Partitions of --topic (default: one per broker)." };
        var command = new Command("mock-cluster",
            "A mock Kafka cluster on 127.0.0.1 until Ctrl-C, SIGTERM or quit, whatever stdin is (a background job's /dev/null too). " +
            "Prints 'bootstrap HOST:PORT,...', then takes one command a line on stdin: " +
            "add ID (a new broker), leader TOPIC PARTITION ID, move ID (the broker advertises a new port), advertise ID HOST PORT, quit.")
        {
            brokers, topic, partitions,
        };
        command.SetAction((parse, cancellationToken) =>
            MockClusterTool.RunAsync(parse.GetValue(brokers), parse.GetValue(topic), parse.GetValue(partitions), Console.In, output, cancellationToken));
        return command;
    }

    /// <summary>An unmodified Confluent.Kafka producer and consumer as a process of their own.</summary>
    private static Command ClientCommand(TextWriter output)
    {
        var bootstrap = new Option<string>("--bootstrap") { Description = "Bootstrap servers, HOST:PORT[,...].", Required = true };
        var topic = new Option<string>("--topic") { Description = "The topic to produce to and consume from.", Required = true };
        var messages = new Option<int>("--messages") { Description = "Messages to produce and consume back.", DefaultValueFactory = _ => 20 };
        var clientId = new Option<string>("--client-id") { Description = "The client.id both clients send.", DefaultValueFactory = _ => "bindproxy-demo-client" };
        var command = new Command("client", "Produce N messages, consume them back; exit 0 when all came back.")
        {
            bootstrap, topic, messages, clientId,
        };
        command.SetAction((parse, cancellationToken) =>
            KafkaClientTool.RunAsync(parse.GetValue(bootstrap)!, parse.GetValue(topic)!, parse.GetValue(messages), parse.GetValue(clientId)!, output, cancellationToken));
        return command;
    }
}
