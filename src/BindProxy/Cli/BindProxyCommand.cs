using System.CommandLine;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;

namespace BindProxy.Cli;

/// <summary>The command line: serve (default), <c>check</c>.</summary>
internal static class BindProxyCommand
{
    public const int ExitOk = 0;
    public const int ExitConfigInvalid = 1;

    /// <param name="configureHost">Host-level wiring (logging) applied to the served application.</param>
    public static RootCommand Create(Action<WebApplicationBuilder, IConfiguration> configureHost)
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
            config, admin, listen, upstream, source, protocol, connectTimeout, brokerPorts, advertisedHost, assign,
        };

        QuickRoute Quick(ParseResult p) => new(p.GetValue(listen), p.GetValue(upstream), p.GetValue(source), p.GetValue(protocol), p.GetValue(connectTimeout),
            p.GetValue(brokerPorts), p.GetValue(advertisedHost), p.GetValue(assign));

        root.SetAction((parse, cancellationToken) => ServeAsync(parse.GetValue(config), parse.GetValue(admin), Quick(parse), configureHost, cancellationToken));

        var check = new Command("check", "Validate the configuration and test-bind every source address, without serving.")
        {
            listen, upstream, source, protocol, connectTimeout, brokerPorts, advertisedHost, assign,
        };
        check.SetAction((parse, cancellationToken) => CheckAsync(parse.GetValue(config), parse.GetValue(admin), Quick(parse), cancellationToken));
        root.Subcommands.Add(check);
        root.Subcommands.Add(ExecCommand.Create(config, admin, configureHost));
        return root;
    }

    private static async Task<(IConfigurationRoot Configuration, ValidationResult? Result)> LoadAsync(string? path, string? admin, QuickRoute quick, CancellationToken cancellationToken, bool watch = false)
    {
        var configuration = ConfigLoader.Load(path, required: path is not null || !quick.IsSet, reloadOnChange: watch && !quick.IsSet, out var loadError);
        if (loadError is not null)
        {
            await Console.Error.WriteLineAsync($"error: {loadError}").ConfigureAwait(false);
            return (configuration, null);
        }

        var validator = new ConfigValidator(new SourceAddressProbe());
        var result = await validator.ValidateAsync(ConfigLoader.Read(configuration, quick, admin), cancellationToken).ConfigureAwait(false);
        foreach (var warning in result.Warnings)
        {
            await Console.Error.WriteLineAsync($"warning: {warning}").ConfigureAwait(false);
        }

        if (!result.IsValid)
        {
            await Console.Error.WriteLineAsync($"error: the configuration has {result.Errors.Count} problem(s):").ConfigureAwait(false);
            foreach (var error in result.Errors)
            {
                await Console.Error.WriteLineAsync($"  {error}").ConfigureAwait(false);
            }
        }

        return (configuration, result);
    }

    private static async Task<int> CheckAsync(string? path, string? admin, QuickRoute quick, CancellationToken cancellationToken)
    {
        var (_, result) = await LoadAsync(path, admin, quick, cancellationToken).ConfigureAwait(false);
        if (result?.Model is not { } model)
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

        Console.WriteLine($"configuration OK: {model.Routes.Count} route(s)");
        return ExitOk;
    }

    private static async Task<int> ServeAsync(string? path, string? admin, QuickRoute quick, Action<WebApplicationBuilder, IConfiguration> configureHost, CancellationToken cancellationToken)
    {
        var (configuration, result) = await LoadAsync(path, admin, quick, cancellationToken, watch: true).ConfigureAwait(false);
        if (result?.Model is not { } model)
        {
            return ExitConfigInvalid;
        }

        // Edits of the file are applied live; quick mode's one route has no file to watch.
        var app = ProxyHost.Build(model, configuration, builder => configureHost(builder, configuration), reload: quick.IsSet ? null : configuration);
        await using (app.ConfigureAwait(false))
        {
            await app.RunAsync(cancellationToken).ConfigureAwait(false);
        }

        return ExitOk;
    }
}
