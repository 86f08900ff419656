using BindProxy.Demo;

// The whole demo is bounded: a hung step ends it with a non-zero exit instead of hanging a terminal or CI.
using var stop = new CancellationTokenSource(args.Length > 0 ? TimeSpan.FromMinutes(30) : DemoRunner.Deadline);
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};

return args switch
{
    ["mock-cluster", .. var rest] => await MockClusterTool.RunAsync(rest, Console.In, Console.Out, stop.Token).ConfigureAwait(false),
    ["client", .. var rest] => await KafkaClientTool.RunAsync(rest, Console.Out, stop.Token).ConfigureAwait(false),
    [] => await DemoRunner.RunAsync(Console.Out, stop.Token).ConfigureAwait(false),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: BindProxy.Demo                       the demo (mock cluster + proxy + clients)");
    Console.Error.WriteLine("       BindProxy.Demo mock-cluster [--brokers 3] [--topic NAME] [--partitions N]");
    Console.Error.WriteLine("                                            a mock cluster on 127.0.0.1 until stdin ends; commands on stdin: add ID, leader TOPIC PARTITION ID, move ID, quit");
    Console.Error.WriteLine("       BindProxy.Demo client --bootstrap HOST:PORT --topic NAME [--messages N] [--client-id ID]");
    Console.Error.WriteLine("                                            produce N messages, consume them back, exit 0 when all came back");
    return DemoRunner.CannotStart;
}
