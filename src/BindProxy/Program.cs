using System.CommandLine;
using BindProxy.Cli;
using BindProxy.Configuration;
using BindProxy.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Serilog;
using Serilog.Events;

// Socket completions run on the socket engine's own threads instead of hopping to the thread
// pool: the forwarding path never blocks, and the hop was a large share of the added latency.
// Read once, at the first socket operation; DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=0 opts out.
const string InlineCompletions = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";
if (Environment.GetEnvironmentVariable(InlineCompletions) is null)
{
    Environment.SetEnvironmentVariable(InlineCompletions, "1");
}

// Serilog is wired here and nowhere else: everything below the host logs through ILogger<T>.
var root = BindProxyCommand.Create((builder, configuration, level) =>
{
    var queue = new LogQueue();
    builder.Services.AddSerilog(CreateLogger(configuration, level, queue), dispose: true).WithoutKestrelConnectionScopes();
    builder.Services.AddSingleton(queue);
    builder.Services.AddHostedService<LogQueueReporter>();
});

// SIGTERM and Ctrl-C are left to the host (ProxyLifetime), which drains connections for up to
// DrainTimeout, or stops at once on a second signal
// (System.CommandLine would otherwise end the process 2 s after the first).
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null }).ConfigureAwait(false);

// The defaults (console, Information, quiet framework categories) come first and the Serilog
// section on top, so a section that only sets a level (in the file, or as
// BINDPROXY_Serilog__MinimumLevel__Default) changes the level and keeps the console; a section
// that names its sinks under WriteTo has exactly those. --log-level has the last word on the level.
//
// Every sink sits behind one bounded queue (LogQueue): a log call decides on the level and
// enqueues, and the sinks are written on the queue's thread, so a slow console never holds up a
// relay loop. So the section is read twice: the levels, filters and enrichers into the logger
// callers see, the sinks (WriteTo) into the one behind the queue.
static Serilog.Core.Logger CreateLogger(IConfiguration configuration, LogLevel? level, LogQueue queue)
{
    var serilog = configuration.GetSection("Serilog");
    var logger = new LoggerConfiguration()
        .MinimumLevel.Information()
        .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
        .MinimumLevel.Override("Yarp", LogEventLevel.Error);

    // The host logs a failure to start with its stack trace; the command line says the same in one line.
    logger.Filter.ByExcluding(e => e.Exception is not null && e.MessageTemplate.Text == "Hosting failed to start");

    // The sinks a Serilog section may name, given by assembly: a single-file build has no
    // deps.json for Serilog to find them in (it would stop at startup).
    var assemblies = new Serilog.Settings.Configuration.ConfigurationReaderOptions(
        typeof(ConsoleLoggerConfigurationExtensions).Assembly, typeof(FileLoggerConfigurationExtensions).Assembly,
        typeof(Serilog.Formatting.Compact.CompactJsonFormatter).Assembly);
    void Sinks(LoggerConfiguration sinks)
    {
        sinks.MinimumLevel.Verbose();
        if (serilog.GetSection("WriteTo").GetChildren().Any())
        {
            sinks.ReadFrom.Configuration(Part(serilog, sinkKeys: true), assemblies);
        }
        else
        {
            sinks.WriteTo.Console(outputTemplate: "{Timestamp:HH:mm:ss.fff} {Level:u3} {Message:lj}{NewLine}{Exception}");
        }
    }

    try
    {
        // Serilog skips a sink it cannot find with a note to its self-log only, which would leave
        // a WriteTo with a typo and no output at all.
        var notes = new List<string>();
        Serilog.Debugging.SelfLog.Enable(notes.Add);
        try
        {
            if (serilog.Exists())
            {
                logger.ReadFrom.Configuration(Part(serilog, sinkKeys: false), assemblies);
            }

            logger.WriteTo.Async(behind => behind.Logger(Sinks), bufferSize: LogQueue.Capacity, blockWhenFull: false, monitor: queue);
        }
        finally
        {
            Serilog.Debugging.SelfLog.Disable();
        }

        const string Missing = "Unable to find a method called ";
        if (notes.FirstOrDefault(n => n.Contains(Missing, StringComparison.Ordinal)) is { } note)
        {
            var name = note[(note.IndexOf(Missing, StringComparison.Ordinal) + Missing.Length)..].Split('.', '\n')[0].Trim();
            throw new ConfigurationException($"the Serilog section cannot be used: there is no sink or setting called {name} (sinks that come with BindProxy: Console, File)");
        }

        if (level is { } least)
        {
            logger.MinimumLevel.Is(least switch
            {
                LogLevel.Trace => LogEventLevel.Verbose,
                LogLevel.Debug => LogEventLevel.Debug,
                LogLevel.Information => LogEventLevel.Information,
                LogLevel.Warning => LogEventLevel.Warning,
                LogLevel.Error => LogEventLevel.Error,
                _ => LogEventLevel.Fatal,
            });
        }

        return logger.CreateLogger();
    }
    catch (Exception e) when (e is InvalidOperationException or ArgumentException or FormatException or InvalidCastException
        or System.Reflection.TargetInvocationException)
    {
        throw new ConfigurationException($"the Serilog section cannot be used: {(e.InnerException ?? e).Message}", e);
    }
}

// The Serilog section with only its sinks (WriteTo, and Using, which names sink assemblies), or
// with everything but them, under the same Serilog: keys.
static IConfiguration Part(IConfigurationSection serilog, bool sinkKeys)
{
    static bool IsSink(string key) =>
        key.StartsWith("Serilog:WriteTo", StringComparison.OrdinalIgnoreCase) || key.StartsWith("Serilog:Using", StringComparison.OrdinalIgnoreCase);

    var pairs = serilog.AsEnumerable().Where(p => p.Value is not null && IsSink(p.Key) == sinkKeys);
    return new ConfigurationBuilder().AddInMemoryCollection(pairs).Build();
}
