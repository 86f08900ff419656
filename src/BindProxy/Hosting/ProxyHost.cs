using BindProxy.Addressing;
using BindProxy.Admin;
using BindProxy.Configuration;
using BindProxy.Faults;
using BindProxy.Forwarding;
using BindProxy.Http;
using BindProxy.Interception;
using BindProxy.Kafka;
using BindProxy.Kafka.Brokers;
using BindProxy.Kafka.Conversation;
using BindProxy.Outbound;
using BindProxy.Transport;
using BindProxy.Transport.Linux;
using BindProxy.Wireshark;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BindProxy.Hosting;

/// <summary>Builds the web host that serves a validated <see cref="ProxyModel"/>.</summary>
internal static partial class ProxyHost
{
    /// <param name="reload">The configuration to watch for edits; null serves <paramref name="model"/> as it is.</param>
    public static WebApplication Build(ProxyModel model, IConfiguration configuration, Action<WebApplicationBuilder>? configure = null, IConfiguration? reload = null)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Configuration.AddConfiguration(configuration);
        builder.WebHost.UseKestrelCore();

        // Kestrel serves the admin endpoint (a plain IPEndPoint, on its stock socket transport)
        // and Http routes; every proxy listener is the proxy's own (ListenerHost).
        builder.WebHost.UseSockets();

        var services = builder.Services;
        var fds = ResourceLimits.RaiseOpenFilesLimit();
        services.AddSingleton(sp => new DescriptorBudget(fds, ResourceLimits.OpenDescriptors(), sp.GetRequiredService<ILogger<DescriptorBudget>>(), ResourceLimits.OpenDescriptors));
        services.AddSingleton(new TransportOptions());
        var engine = ForwardingEngine.For(model.Engine);
        services.AddSingleton(engine);
        services.AddSingleton(new RouteTable(model));
        services.AddSingleton<OwnListeners>();
        services.AddSingleton<ListenerRegistry>();
        services.AddSingleton<ConnectionRegistry>();
        services.AddSingleton<IDrainSource>(sp => sp.GetRequiredService<ConnectionRegistry>());
        services.AddSingleton<DrainCoordinator>();
        services.AddSingleton<StallWatchdog>();
        services.AddHostedService<ConnectionSweeper>();
        services.AddSingleton<UpstreamConnector>();
        services.AddSingleton<CaptureHub>();
        services.AddSingleton<ConnectionLifecycle>();
        services.AddSingleton<PipeForwarder>();
        services.AddSingleton<FaultTable>();
        services.AddSingleton<FileToxics>();
        services.AddSingleton<IToxicCheck>(new ToxicCheck(FaultApi.CheckText));

        // The one place the engine is chosen: how proxy listeners accept, and who forwards a
        // connection that ForwardingPath does not send down the pipe path.
        if (engine.IsRelay)
        {
            services.AddSingleton<RelayEngine>();
            services.AddSingleton<IEngineListeners, RelayEngineListeners>();
            services.AddSingleton<IConnectionForwarder, RelayForwarder>();
        }
        else
        {
            services.AddSingleton<IEngineListeners, SocketEngineListeners>();
            services.AddSingleton<IConnectionForwarder>(sp => sp.GetRequiredService<PipeForwarder>());
        }

        services.AddSingleton<ProxyConnectionHandler>();
        services.AddSingleton<UpstreamRefusals>();
        services.AddSingleton<SourceAddressProbe>();
        services.AddSingleton<ProcessLookup>();
        services.AddSingleton<AssignmentRegistry>();
        services.AddSingleton<SourceAssigner>();
        services.AddSingleton<RouteListenerFactory>();
        services.AddSingleton<BrokerDirectories>();
        services.AddSingleton<IKafkaForwarder, KafkaForwarder>();
        services.AddSingleton(sp => new KafkaConversations(sp.GetRequiredService<ProxyMetrics>()));
        services.AddSingleton<InterceptedPorts>();
        services.AddSingleton<InterceptedConnections>();
        services.AddHttpRoutes();
        services.AddSingleton<ListenerHost>();
        services.AddHostedService<AcceptLoops>();
        services.AddSingleton<RouteListeners>();
        services.AddSingleton<IBrokerListeners>(sp => sp.GetRequiredService<RouteListeners>());
        services.AddHostedService(sp => sp.GetRequiredService<RouteListeners>());
        services.AddHostedService<ShutdownDrain>();
        services.Configure<HostOptions>(host =>
        {
            // The drain bounds the stop (DrainTimeout, as configured when it begins, or at once
            // after a second Ctrl-C); the services stop side by side while it runs.
            host.ShutdownTimeout = Timeout.InfiniteTimeSpan;
            host.ServicesStopConcurrently = true;
        });
        services.AddSingleton<InterceptionHost>();
        services.AddHostedService(sp => sp.GetRequiredService<InterceptionHost>());
        services.AddSingleton<IInterceptionProbe, InterceptionProbe>();
        services.AddSingleton<ConfigValidator>();
        services.AddSingleton(new ReloadSource(reload));
        services.AddSingleton<CaptureFiles>();
        services.AddHostedService(sp => sp.GetRequiredService<CaptureFiles>());
        services.AddSingleton<ConfigReloader>();
        services.AddHostedService(sp => sp.GetRequiredService<ConfigReloader>());

        // Metrics are recorded whether or not the admin endpoint is on; without a listener they
        // cost next to nothing. The admin HTTP endpoint runs only when configured.
        services.AddMetrics();
        services.AddSingleton<ProxyMetrics>();
        if (model.Admin is { } admin)
        {
            AdminEndpoint.Add(builder, admin);
        }

        if (model.Faults is { } faults)
        {
            FaultEndpoint.Add(builder, faults);
        }

        builder.WebHost.ConfigureKestrel(kestrel => kestrel.ListenHttpRoutes());

        configure?.Invoke(builder);
        var app = builder.Build();
        app.UseHttpRoutes();
        if (model.Faults is not null)
        {
            FaultEndpoint.Map(app);
        }

        if (model.Admin is not null)
        {
            AdminEndpoint.Map(app);

            // The admin endpoint is a listener of this process too: no route may connect to it.
            var adminEndpoint = app.Services.GetRequiredService<AdminEndpoint>();
            var own = app.Services.GetRequiredService<OwnListeners>();
            app.Lifetime.ApplicationStarted.Register(() =>
            {
                if (adminEndpoint.BoundEndPoint is { } bound)
                {
                    own.Add(bound, "the admin endpoint");
                }
            });
        }

        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("BindProxy");
        var ports = ResourceLimits.EphemeralPortRange();
        long portsPerPair = ports.Last - ports.First + 1;

        // The budget starts from the descriptors open now, before any listener: each proxied
        // connection holds two, each Tcp or Kafka listener one.
        var budget = app.Services.GetRequiredService<DescriptorBudget>();
        int listeners = (int)model.Routes.Where(r => r.Protocol != RouteProtocol.Http).Sum(r => r.Listen.Count);
        long? fdCapacity = budget.Limit is null ? null : budget.ConnectionsBeside(listeners);
        if (budget.Limit is { } limit)
        {
            Log.Capacity(logger, limit, fdCapacity!.Value, budget.OpenAtStart, DescriptorBudget.Reserve, ports.First, ports.Last);
        }

        Log.Engine(logger, engine.Name, engine.IsRelay ? $"epoll, {Environment.ProcessorCount} loop(s)" : "System.IO.Pipelines over .NET sockets");
        foreach (var route in model.Routes)
        {
            Log.Route(logger, route.Name, route.Listen.Text, route.Upstream.Text, route.Sources.Addresses.ToString(),
                route.Sources.Addresses.Count, route.Protocol, route.WiresharkFilter, route.TsharkCommand);

            long destinations = route.Upstream.Endpoints?.Count ?? 1;
            long outbound = Saturate(route.Sources.Addresses.Count, destinations, portsPerPair);
            long inbound = Saturate(route.Listen.Count, portsPerPair, 1);
            Log.RoutePorts(logger, route.Name, outbound, route.Sources.Addresses.Count, destinations, portsPerPair, inbound, route.Listen.Count);
            if (route.MaxConnections is { } max && (max > outbound || (fdCapacity is { } cap && max > cap)))
            {
                Log.MaxConnectionsTooHigh(logger, route.Name, max, outbound, fdCapacity ?? long.MaxValue);
            }
        }

        return app;
    }

    private static long Saturate(long a, long b, long c)
    {
        var product = (System.Numerics.BigInteger)a * b * c;
        return product > long.MaxValue ? long.MaxValue : (long)product;
    }

    private static partial class Log
    {
        [LoggerMessage(2, LogLevel.Information, "Open-files limit {Fds}: room for {Connections} proxied connections in this process (2 descriptors each, beside {Open} open at startup and {Reserve} kept for the runtime); clients past it are refused; ephemeral ports {First}-{Last}")]
        public static partial void Capacity(ILogger logger, long fds, long connections, int open, int reserve, int first, int last);

        [LoggerMessage(3, LogLevel.Information, "Route {Route}: ephemeral ports for {Outbound} upstream connections ({Sources} source × {Destinations} destination address(es) × {PortsPerPair} ports); clients from one address can open {Inbound} ({Listen} listen endpoint(s) × ports)")]
        public static partial void RoutePorts(ILogger logger, string route, long outbound, long sources, long destinations, long portsPerPair, long inbound, long listen);

        [LoggerMessage(5, LogLevel.Information, "Forwarding engine for Tcp routes: {Engine} ({Detail}); Kafka routes use pipes, Http routes YARP")]
        public static partial void Engine(ILogger logger, string engine, string detail);

        [LoggerMessage(4, LogLevel.Warning, "Route {Route}: MaxConnections {Max} exceeds what this machine can hold: {Outbound} by ephemeral ports, {FdCapacity} by open files")]
        public static partial void MaxConnectionsTooHigh(ILogger logger, string route, int max, long outbound, long fdCapacity);

        [LoggerMessage(1, LogLevel.Information, "Route {Route}: {Listen} → {Upstream} from {Source} ({SourceCount} address(es), {Protocol}); Wireshark: {Filter}; live: {Tshark}")]
        public static partial void Route(ILogger logger, string route, string listen, string upstream, string source, long sourceCount, RouteProtocol protocol, string filter, string tshark);
    }
}
