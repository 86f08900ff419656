using System.CommandLine;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Faults;
using BindProxy.Hosting;
using BindProxy.Interception;
using BindProxy.Transport;
using BindProxy.Wireshark;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BindProxy.Cli;

/// <summary>The command line: serve (default), <c>check</c>.</summary>
internal static class BindProxyCommand
{
    public const int ExitOk = 0;

    /// <summary>The configuration is invalid, or the proxy cannot start with it (a busy port, a missing permission).</summary>
    public const int ExitConfigInvalid = 1;

    /// <summary>The names <c>--log-level</c> takes: Serilog's and Microsoft.Extensions.Logging's, and short forms.</summary>
    private static readonly Dictionary<string, LogLevel> LogLevels = new(StringComparer.OrdinalIgnoreCase)
    {
        ["verbose"] = LogLevel.Trace,
        ["trace"] = LogLevel.Trace,
        ["debug"] = LogLevel.Debug,
        ["information"] = LogLevel.Information,
        ["info"] = LogLevel.Information,
        ["warning"] = LogLevel.Warning,
        ["warn"] = LogLevel.Warning,
        ["error"] = LogLevel.Error,
        ["fatal"] = LogLevel.Critical,
        ["critical"] = LogLevel.Critical,
    };

    /// <param name="configureHost">
    /// Host-level wiring (logging) applied to the served application, given the configuration and
    /// the <c>--log-level</c> option; throws <see cref="ConfigurationException"/> for a logging
    /// configuration it cannot use.
    /// </param>
    public static RootCommand Create(Action<WebApplicationBuilder, IConfiguration, LogLevel?> configureHost)
    {
        var config = new Option<string?>("--config", "-c")
        {
            Description = $"Configuration file (default: ./{ConfigLoader.DefaultFile}).",
            Recursive = true,
        };
        var admin = new Option<string?>("--admin")
        {
            Description = "Admin HTTP endpoint (status page, /metrics, /api/*), ADDR:PORT on loopback, or off. Replaces the file's Admin:Listen.",
            Recursive = true,
        };
        var logLevel = new Option<string?>("--log-level")
        {
            Description = "Least level logged: verbose, debug, information (default), warning, error or fatal. Replaces the level of the file's Serilog section.",
            HelpName = "LEVEL",
            Recursive = true,
        };
        logLevel.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string?>() is { } text && !LogLevels.ContainsKey(text))
            {
                result.AddError($"--log-level: '{text}' is not a level; expected verbose, debug, information, warning, error or fatal");
            }
        });
        var engine = new Option<string?>("--engine")
        {
            Description = "Forwarding engine of plain Tcp routes: auto (default: relay on Linux x64/arm64, pipes elsewhere), relay or pipes. Replaces the file's BindProxy:Engine.",
            HelpName = "ENGINE",
            Recursive = true,
        };
        engine.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string?>() is { } text && !EngineSettings.TryParse(text, out _))
            {
                result.AddError($"--engine: '{text}' is not an engine; expected {EngineSettings.Expected}");
            }
        });
        var listen = new Option<string?>("--listen")
        {
            Description = "Quick mode: listen endpoint(s), ADDR:PORT or an address range/CIDR/list with one port. Replaces the file's routes.",
        };
        var upstream = new Option<string?>("--upstream") { Description = "Quick mode: the real server, HOST:PORT (or ADDR-RANGE:PORT)." };
        var source = new Option<string?>("--source") { Description = "Quick mode: source address(es) for upstream connections: 127.0.0.2, 127.0.0.2-127.0.0.40, 127.0.1.0/24 or a list." };
        var protocol = new Option<string?>("--protocol") { Description = "Quick mode: tcp (default), kafka or http." };
        var connectTimeout = new Option<string?>("--connect-timeout") { Description = "Quick mode: upstream connect timeout (default 00:00:10)." };
        var brokerPorts = new Option<string?>("--broker-ports") { Description = "Quick mode, Kafka: proxy ports for brokers in discovery order, e.g. 19093-19120 (default: automatic)." };
        var assign = new Option<string?>("--assign") { Description = "Quick mode: source assignment per client: round-robin (default), client-address, process or kafka-client-id." };
        var advertisedHost = new Option<string?>("--advertised-host") { Description = "Quick mode, Kafka: host written into rewritten broker addresses (default: the address the client connected to)." };

        var root = new RootCommand(
            "BindProxy: a TCP proxy that re-originates every client connection from a configured source address (127.0.0.N), " +
            "so one client's traffic can be isolated in Wireshark and load tests get past one address pair's ephemeral ports.")
        {
            config, admin, logLevel, engine, listen, upstream, source, protocol, connectTimeout, brokerPorts, advertisedHost, assign,
        };

        QuickRoute Quick(ParseResult p) => new(p.GetValue(listen), p.GetValue(upstream), p.GetValue(source), p.GetValue(protocol), p.GetValue(connectTimeout),
            p.GetValue(brokerPorts), p.GetValue(advertisedHost), p.GetValue(assign));

        root.SetAction((parse, cancellationToken) => ServeAsync(parse.GetValue(config), parse.GetValue(admin), parse.GetValue(engine), Quick(parse),
            parse.GetValue(logLevel) is { } level ? LogLevels[level] : null, configureHost, cancellationToken));

        var check = new Command("check", "Validate the configuration, test-bind every source address and listen endpoint, and serve nothing.")
        {
            listen, upstream, source, protocol, connectTimeout, brokerPorts, advertisedHost, assign,
        };
        check.SetAction((parse, cancellationToken) => CheckAsync(parse.GetValue(config), parse.GetValue(admin), parse.GetValue(engine), Quick(parse), cancellationToken));
        root.Subcommands.Add(check);
        root.Subcommands.Add(FaultCommand.Create());
        root.Subcommands.Add(CertCommand.Create(config));
        root.Subcommands.Add(KafkaTailCommand.Create(admin));
        root.Subcommands.Add(CaptureCommand.Create(admin));
        root.Subcommands.Add(ExecCommand.Create(config, admin, engine, parse => parse.GetValue(logLevel) is { } level ? LogLevels[level] : null, configureHost));
        return root;
    }

    /// <summary>
    /// Loads, validates and test-binds the configuration; every problem goes to stderr (one line
    /// when there is one) and the result is null then.
    /// </summary>
    private static async Task<(IConfigurationRoot Configuration, ProxyModel? Model)> LoadAsync(string? path, string? admin, string? engine, QuickRoute quick, CancellationToken cancellationToken, bool watch = false)
    {
        var configuration = ConfigLoader.Load(path, required: path is not null || !quick.IsSet, reloadOnChange: watch && !quick.IsSet, out var loadError);
        if (loadError is not null)
        {
            await Console.Error.WriteLineAsync($"error: {loadError}").ConfigureAwait(false);
            return (configuration, null);
        }

        var validator = new ConfigValidator(new SourceAddressProbe(), new InterceptionProbe(), new ToxicCheck(FaultApi.CheckText));
        var result = await validator.ValidateAsync(ConfigLoader.Read(configuration, quick, admin, engine), cancellationToken).ConfigureAwait(false);
        foreach (var warning in result.Warnings)
        {
            await Console.Error.WriteLineAsync($"warning: {warning}").ConfigureAwait(false);
        }

        // Listeners are test-bound only for a configuration that is otherwise good: their problems
        // (a busy port) are the machine's, not the file's, and come after the file is right.
        var errors = result.Model is { } model ? ListenerCheck.Check(model) : result.Errors;
        if (errors.Count > 0)
        {
            await Console.Error.WriteLineAsync($"error: {ProblemReport.Describe(errors)}").ConfigureAwait(false);
            return (configuration, null);
        }

        return (configuration, result.Model);
    }

    private static async Task<int> CheckAsync(string? path, string? admin, string? engine, QuickRoute quick, CancellationToken cancellationToken)
    {
        var (_, model) = await LoadAsync(path, admin, engine, quick, cancellationToken).ConfigureAwait(false);
        if (model is null)
        {
            return ExitConfigInvalid;
        }

        foreach (var route in model.Routes)
        {
            Console.WriteLine($"route '{route.Name}': {route.Listen} → {route.Upstream} from {route.Sources.Addresses} ({route.Protocol}); Wireshark: {route.WiresharkFilter}");
        }

        if (model.Admin is { } adminModel)
        {
            Console.WriteLine($"admin endpoint: http://{adminModel.Listen}/");
        }

        Console.WriteLine($"forwarding engine for Tcp routes: {ForwardingEngine.For(model.Engine)}");
        Console.WriteLine($"configuration OK: {model.Routes.Count} route(s)");
        return ExitOk;
    }

    private static async Task<int> ServeAsync(string? path, string? admin, string? engine, QuickRoute quick, LogLevel? logLevel,
        Action<WebApplicationBuilder, IConfiguration, LogLevel?> configureHost, CancellationToken cancellationToken)
    {
        var (configuration, model) = await LoadAsync(path, admin, engine, quick, cancellationToken, watch: true).ConfigureAwait(false);
        if (model is null)
        {
            return ExitConfigInvalid;
        }

        WebApplication app;
        try
        {
            // Edits of the file are applied live; quick mode's one route has no file to watch.
            app = ProxyHost.Build(model, configuration, builder =>
            {
                configureHost(builder, configuration, logLevel);

                // Ctrl-C and SIGTERM: a drain that says what it waits for, and a second one to stop now.
                builder.Services.AddSingleton<IHostLifetime, ProxyLifetime>();
            }, reload: quick.IsSet ? null : configuration);
        }
        catch (ConfigurationException e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
            return ExitConfigInvalid;
        }

        await using (app.ConfigureAwait(false))
        {
            try
            {
                await app.StartAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (StartupFailure.Describe(e, model) is { } reason)
            {
                // Listeners were test-bound a moment ago; another process took one since, or the
                // OS refused in a way the test did not show. One line, as for a bad file.
                await Console.Error.WriteLineAsync($"error: {reason}").ConfigureAwait(false);

                // Services that did start (the relay loops among them) stop before the process exits.
                using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await app.StopAsync(stop.Token).ConfigureAwait(false);
                return ExitConfigInvalid;
            }

            await app.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
        }

        return ExitOk;
    }
}
