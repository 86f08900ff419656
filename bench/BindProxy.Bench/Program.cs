using BindProxy.Bench.Cli;

return await BenchCommands.Root().Parse(args).InvokeAsync();
