using System.CommandLine;
using BindProxy.Demo;

// Ctrl-C or SIGTERM cancels the run; the demo then closes its clients, the proxy and the cluster.
return await DemoCommand.Create(Console.Out).Parse(args)
    .InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = DemoCommand.StopTimeout }).ConfigureAwait(false);
