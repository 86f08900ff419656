using BindProxy.Demo;

// The whole demo is bounded: a hung step ends it with a non-zero exit instead of hanging a terminal or CI.
using var stop = new CancellationTokenSource(DemoRunner.Deadline);
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};

return await DemoRunner.RunAsync(Console.Out, stop.Token).ConfigureAwait(false);
