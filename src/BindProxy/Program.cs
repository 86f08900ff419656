using System.CommandLine;
using BindProxy.Cli;
using BindProxy.Hosting;
using Microsoft.Extensions.Configuration;
using Serilog;

// Socket completions run on the socket engine's own threads instead of hopping to the thread
// pool: the forwarding path never blocks, and the hop was a large share of the added latency.
// Read once, at the first socket operation; DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=0 opts out.
const string InlineCompletions = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";
if (Environment.GetEnvironmentVariable(InlineCompletions) is null)
{
    Environment.SetEnvironmentVariable(InlineCompletions, "1");
}

// The sinks a Serilog section may name, given by assembly: a single-file build has no deps.json
// for Serilog to find them in (it would stop at startup).
var serilogSinks = new Serilog.Settings.Configuration.ConfigurationReaderOptions(typeof(ConsoleLoggerConfigurationExtensions).Assembly,
    typeof(FileLoggerConfigurationExtensions).Assembly, typeof(Serilog.Formatting.Compact.CompactJsonFormatter).Assembly);

// Serilog is wired here and nowhere else: everything below the host logs through ILogger<T>.
var root = BindProxyCommand.Create((builder, configuration) =>
{
    var logger = new LoggerConfiguration();
    if (configuration.GetSection("Serilog").Exists())
    {
        logger.ReadFrom.Configuration(configuration, serilogSinks);
    }
    else
    {
        logger.MinimumLevel.Information()
            .MinimumLevel.Override("Microsoft", Serilog.Events.LogEventLevel.Warning)
            .MinimumLevel.Override("Yarp", Serilog.Events.LogEventLevel.Error)
            .WriteTo.Console(outputTemplate: "{Timestamp:HH:mm:ss.fff} {Level:u3} {Message:lj}{NewLine}{Exception}");
    }

    builder.Services.AddSerilog(logger.CreateLogger(), dispose: true).WithoutKestrelConnectionScopes();
});

// SIGTERM and Ctrl-C are left to the host, which drains connections for up to DrainTimeout
// (System.CommandLine would otherwise end the process 2 s after the signal).
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null }).ConfigureAwait(false);
