using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using BindProxy.Addressing;
using BindProxy.Admin;
using BindProxy.Configuration;
using BindProxy.Hosting;
using BindProxy.Interception;
using BindProxy.Wireshark;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BindProxy.Cli;

/// <summary>
/// <c>exec</c>: runs a command whose TCP connections to the given ports are redirected to the
/// proxy (nftables, matched on the command's own cgroup) and re-originated to where they were
/// going, from the source address. The command needs no change: it uses the servers' real
/// addresses.
/// </summary>
internal static partial class ExecCommand
{
    /// <summary>exec's own failure before the command ran (interception unavailable); like <c>env</c> and <c>timeout</c>.</summary>
    public const int ExitCannotRun = 125;

    public const string RouteName = "exec";

    private const string LoggerCategory = "BindProxy.Exec";

    // Proxy logs go to stderr: the command's stdout is passed through untouched.
    private static readonly Dictionary<string, string?> StderrLogging = new()
    {
        ["Serilog:MinimumLevel:Default"] = "Information",
        ["Serilog:MinimumLevel:Override:Microsoft"] = "Warning",
        ["Serilog:MinimumLevel:Override:Yarp"] = "Error",
        ["Serilog:WriteTo:0:Name"] = "Console",
        ["Serilog:WriteTo:0:Args:outputTemplate"] = "{Timestamp:HH:mm:ss.fff} {Level:u3} {Message:lj}{NewLine}{Exception}",
        ["Serilog:WriteTo:0:Args:standardErrorFromLevel"] = "Verbose",
    };

    /// <param name="logLevel">The <c>--log-level</c> the user gave, if any.</param>
    public static Command Create(Option<string?> config, Option<string?> admin, Option<string?> engine, Func<ParseResult, LogLevel?> logLevel, Action<WebApplicationBuilder, IConfiguration, LogLevel?> configureHost)
    {
        var source = new Option<string>("--source") { Description = "Source address(es) the command's connections leave from: 127.0.0.7, a range, a CIDR block or a list.", Required = true };
        var ports = new Option<string?>("--ports") { Description = "Destination ports to intercept: 9092-9094,8081." };
        var protocol = new Option<string?>("--protocol") { Description = "tcp (default) or kafka: Kafka adds every broker port named in the cluster's responses." };
        var kafka = new Option<string?>("--kafka") { Description = "Kafka bootstrap HOST:PORT[,HOST:PORT...] the command uses; its ports are intercepted and --protocol is kafka." };
        var assign = new Option<string?>("--assign") { Description = "Source assignment per client: round-robin (default), client-address, process or kafka-client-id." };
        var command = new Argument<string[]>("command") { Description = "The command and its arguments, after --.", Arity = ArgumentArity.OneOrMore };

        var exec = new Command("exec",
            "Run COMMAND with its TCP connections to the given ports intercepted (Linux: nftables + cgroup v2, needs root or CAP_NET_ADMIN) " +
            "and re-originated from the source address to their original destination. The file's routes are not served; its logging and Admin settings apply.")
        {
            source, ports, protocol, kafka, assign, command,
        };
        exec.SetAction((parse, cancellationToken) => RunAsync(
            new ExecOptions(parse.GetValue(config), parse.GetValue(admin), parse.GetValue(engine), parse.GetValue(source)!, parse.GetValue(ports), parse.GetValue(protocol),
                parse.GetValue(kafka), parse.GetValue(assign), parse.GetValue(command) ?? [], logLevel(parse)),
            configureHost, cancellationToken));
        return exec;
    }

    private static async Task<int> RunAsync(ExecOptions options, Action<WebApplicationBuilder, IConfiguration, LogLevel?> configureHost, CancellationToken cancellationToken)
    {
        if (!OperatingSystem.IsLinux())
        {
            await Console.Error.WriteLineAsync($"error: {InterceptionSupport.UnsupportedOs()}").ConfigureAwait(false);
            return ExitCannotRun;
        }

        return await RunOnLinuxAsync(options, configureHost, cancellationToken).ConfigureAwait(false);
    }

    [SupportedOSPlatform("linux")]
    private static async Task<int> RunOnLinuxAsync(ExecOptions options, Action<WebApplicationBuilder, IConfiguration, LogLevel?> configureHost, CancellationToken cancellationToken)
    {
        if (!TryReadTarget(options, out var ports, out var protocol, out var upstream, out var problem))
        {
            await Console.Error.WriteLineAsync($"error: {problem}").ConfigureAwait(false);
            return BindProxyCommand.ExitConfigInvalid;
        }

        var (configuration, model) = await LoadAsync(options, protocol, upstream, cancellationToken).ConfigureAwait(false);
        if (model is null)
        {
            return BindProxyCommand.ExitConfigInvalid;
        }

        // Everything interception needs, checked before anything starts, reported in one message.
        var missing = new List<string>(InterceptionSupport.MissingForRules());
        var hierarchy = CgroupHierarchy.Find(out var cgroupError);
        if (hierarchy is null)
        {
            missing.Add(cgroupError);
        }

        CgroupGroup? group = null;
        if (missing.Count == 0 && (group = CgroupGroup.Create(hierarchy!, Environment.ProcessId, out var groupError)) is null)
        {
            missing.Add($"write access to the cgroup v2 hierarchy ({groupError})");
        }

        var alternative = Alternative(options, protocol, upstream, ports);
        if (missing.Count > 0)
        {
            await Console.Error.WriteLineAsync($"error: {InterceptionSupport.Missing(missing, alternative)}").ConfigureAwait(false);
            return ExitCannotRun;
        }

        // The admin endpoint is a convenience here, not what the user came for: when its port is
        // taken (a proxy started from the same file holds it) the command runs without it.
        if (ListenerCheck.Admin(model) is { } adminProblem)
        {
            await Console.Error.WriteLineAsync($"warning: {adminProblem}; exec runs the command without the admin endpoint").ConfigureAwait(false);
            model = new ProxyModel(model.Routes, model.DrainTimeout) { Engine = model.Engine };
        }

        return await InterceptAsync(options, configuration, model, ports, group!, alternative, configureHost, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Serves the route with the command's group intercepted (the host's <see cref="InterceptionHost"/>
    /// installs the rules as it starts and removes them once it has stopped), runs the command, and
    /// stops when it exits.
    /// </summary>
    [SupportedOSPlatform("linux")]
    private static async Task<int> InterceptAsync(ExecOptions options, IConfiguration configuration, ProxyModel model, PortSet ports,
        CgroupGroup group, string alternative, Action<WebApplicationBuilder, IConfiguration, LogLevel?> configureHost, CancellationToken cancellationToken)
    {
        var route = model.Routes[0].WithIntercept(new InterceptSettings(ports, new InterceptSelector.Cgroup(group.Directory, group.Level)));
        model = new ProxyModel([route], model.DrainTimeout) { Admin = model.Admin, Engine = model.Engine };
        var app = ProxyHost.Build(model, configuration, builder =>
        {
            configureHost(builder, configuration, options.LogLevel);
            // The command's connections pass through this host: it stops after the command, not on a signal.
            builder.Services.AddSingleton<IHostLifetime, CommandLifetime>();
        });
        await using (app.ConfigureAwait(false))
        {
            var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(LoggerCategory);
            try
            {
                CgroupGroup.RemoveStale(Path.GetDirectoryName(group.Directory)!, logger);
                try
                {
                    await app.StartAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (InterceptionUnavailableException e)
                {
                    await Console.Error.WriteLineAsync(
                        $"error: bindproxy exec cannot intercept the command's connections: nftables refused the rules: {e.NftError}\n" +
                        $"  The kernel needs nf_tables with NAT and socket matching (modules nf_tables, nft_nat, nft_redir, nft_socket; on Debian/Ubuntu they ship with the kernel).\n" +
                        $"  Without interception: point the client at a listener instead: {alternative}").ConfigureAwait(false);
                    return ExitCannotRun;
                }
                catch (Exception e) when (StartupFailure.Describe(e, model) is { } reason)
                {
                    // A port taken between the check and the start: nothing of the command ran.
                    await Console.Error.WriteLineAsync($"error: {reason}; the command was not started").ConfigureAwait(false);
                    return ExitCannotRun;
                }

                Log.Filters(logger, route.WiresharkFilter, route.TsharkCommand);

                using var command = CgroupCommand.Start(group.ProcsFile, options.Command);
                Log.Started(logger, command.Pid, string.Join(' ', options.Command), route.Sources.Addresses.ToString());
                int exitCode = await command.WaitAsync().ConfigureAwait(false);
                Log.Exited(logger, exitCode);
                return exitCode;
            }
            catch (System.ComponentModel.Win32Exception e)
            {
                await Console.Error.WriteLineAsync($"error: the command could not be started: {e.Message}").ConfigureAwait(false);
                return ExitCannotRun;
            }
            finally
            {
                // The command's connections drain, then the rules that NAT their last packets go (InterceptionHost).
                using (var stop = new CancellationTokenSource(model.DrainTimeout + TimeSpan.FromSeconds(1)))
                {
                    await app.StopAsync(stop.Token).ConfigureAwait(false);
                }

                group.Remove(logger);
            }
        }
    }

    /// <summary>The ports to intercept, the protocol, and the upstream text the route is validated with.</summary>
    private static bool TryReadTarget(ExecOptions options, out PortSet ports, out string protocol, out string upstream, out string error)
    {
        ports = PortSet.Empty;
        upstream = "";
        protocol = options.Protocol ?? (options.Kafka is null ? "tcp" : "kafka");
        error = "";
        if (options.Command.Count == 0)
        {
            error = "no command given; usage: bindproxy exec --source ADDR --ports LIST -- COMMAND [ARGS...]";
            return false;
        }

        if (options.Ports is { } text && !PortSet.TryParse(text, out ports, out var portsError))
        {
            error = $"--ports: {portsError}";
            return false;
        }

        if (options.Kafka is { } bootstrap)
        {
            if (!string.Equals(protocol, "kafka", StringComparison.OrdinalIgnoreCase))
            {
                error = $"--kafka is a Kafka bootstrap, but --protocol is {protocol}";
                return false;
            }

            foreach (var server in bootstrap.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                if (!UpstreamSpec.TryParse(server, out var spec, out var kafkaError))
                {
                    error = $"--kafka: {kafkaError}";
                    return false;
                }

                ports = ports.With(spec.Port);
                upstream = upstream.Length == 0 ? spec.Text : upstream;
            }
        }

        if (ports.IsEmpty)
        {
            error = "nothing to intercept: give --ports (9092-9094,8081) or --kafka BOOTSTRAP";
            return false;
        }

        // The route is validated like any other; its upstream then becomes "the original destination".
        if (upstream.Length == 0)
        {
            upstream = $"127.0.0.1:{ports.Ranges[0].First}";
        }

        return true;
    }

    private static async Task<(IConfiguration Configuration, ProxyModel? Model)> LoadAsync(ExecOptions options, string protocol, string upstream, CancellationToken cancellationToken)
    {
        var file = ConfigLoader.Load(options.Config, required: options.Config is not null, reloadOnChange: false, out var loadError);
        if (loadError is not null)
        {
            await Console.Error.WriteLineAsync($"error: {loadError}").ConfigureAwait(false);
            return (file, null);
        }

        IConfiguration configuration = new ConfigurationBuilder().AddConfiguration(file).AddInMemoryCollection(LogToStderr(file)).Build();

        // Redirected connections arrive on loopback: IPv4 at 127.0.0.1, IPv6 at [::1] when the machine has it.
        var listen = Ipv6LoopbackWorks() ? "127.0.0.1:0,[::1]:0" : "127.0.0.1:0";
        var route = new RouteConfig { Name = RouteName, Listen = listen, Upstream = upstream, Source = options.Source, Protocol = protocol, Assign = options.Assign };
        var config = ConfigLoader.Read(configuration, new QuickRoute(null, null, null, null, null), options.Admin, options.Engine) with { Routes = [route] };
        var result = await new ConfigValidator(new SourceAddressProbe()).ValidateAsync(config, cancellationToken).ConfigureAwait(false);
        foreach (var warning in result.Warnings)
        {
            await Console.Error.WriteLineAsync($"warning: {warning}").ConfigureAwait(false);
        }

        if (!result.IsValid)
        {
            await Console.Error.WriteLineAsync($"error: the options have {result.Errors.Count} problem(s):").ConfigureAwait(false);
            foreach (var error in result.Errors)
            {
                await Console.Error.WriteLineAsync($"  {error.ToString().Replace($"route '{RouteName}': Source", "--source", StringComparison.Ordinal)}").ConfigureAwait(false);
            }
        }

        return (configuration, result.Model);
    }

    /// <summary>
    /// Logging settings that keep the proxy's log lines off stdout: the default console sink on
    /// stderr, or, when the file configures Serilog, each of its console sinks moved to stderr.
    /// </summary>
    private static Dictionary<string, string?> LogToStderr(IConfiguration file)
    {
        var serilog = file.GetSection("Serilog");
        if (!serilog.Exists())
        {
            return StderrLogging;
        }

        return serilog.GetSection("WriteTo").GetChildren()
            .Where(sink => string.Equals(sink["Name"], "Console", StringComparison.OrdinalIgnoreCase))
            .ToDictionary(sink => $"{sink.Path}:Args:standardErrorFromLevel", _ => (string?)"Verbose");
    }

    /// <summary>The same traffic without interception: a listener the client is pointed at.</summary>
    private static string Alternative(ExecOptions options, string protocol, string upstream, PortSet ports)
    {
        var target = options.Kafka is not null ? upstream : $"HOST:{ports.Ranges[0].First}";
        var kafka = string.Equals(protocol, "kafka", StringComparison.OrdinalIgnoreCase) ? " --protocol kafka" : "";
        return $"bindproxy --listen 127.0.0.1:19092 --upstream {target} --source {options.Source}{kafka}, and connect the client to 127.0.0.1:19092";
    }

    private static bool Ipv6LoopbackWorks()
    {
        if (!Socket.OSSupportsIPv6)
        {
            return false;
        }

        try
        {
            using var probe = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp);
            probe.Bind(new IPEndPoint(IPAddress.IPv6Loopback, 0));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private sealed record ExecOptions(string? Config, string? Admin, string? Engine, string Source, string? Ports, string? Protocol, string? Kafka, string? Assign, IReadOnlyList<string> Command, LogLevel? LogLevel);

    /// <summary>A host lifetime that ignores signals: exec stops the host itself once the command has exited.</summary>
    private sealed class CommandLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    private static partial class Log
    {
        [LoggerMessage(941, LogLevel.Information, "exec: the command's traffic: Wireshark: {Wireshark}; {Tshark}")]
        public static partial void Filters(ILogger logger, string wireshark, string tshark);

        [LoggerMessage(942, LogLevel.Information, "exec: started pid {Pid}: {Command}; its connections leave from {Source}")]
        public static partial void Started(ILogger logger, int pid, string command, string source);

        [LoggerMessage(943, LogLevel.Information, "exec: the command exited with code {ExitCode}")]
        public static partial void Exited(ILogger logger, int exitCode);
    }
}
