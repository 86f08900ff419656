using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Forwarding;
using BindProxy.Outbound;
using BindProxy.Transport;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace BindProxy.Hosting;

/// <summary>Builds the web host that serves a validated <see cref="ProxyModel"/>.</summary>
internal static partial class ProxyHost
{
    public static WebApplication Build(ProxyModel model, IConfiguration configuration, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Configuration.AddConfiguration(configuration);
        builder.WebHost.UseKestrelCore();

        var services = builder.Services;
        services.AddSingleton(new TransportOptions());
        services.AddSingleton(new RouteTable(model));
        services.AddSingleton<ListenerRegistry>();
        services.AddSingleton<ConnectionRegistry>();
        services.AddSingleton<UpstreamConnector>();
        services.AddSingleton<ProxyConnectionHandler>();
        services.AddSingleton<SourceAddressProbe>();
        services.AddSingleton<IConnectionListenerFactory, SocketTransportFactory>();

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            foreach (var route in model.Routes)
            {
                foreach (var endpoint in route.Listen.Endpoints)
                {
                    kestrel.Listen(new RouteEndPoint(route.Name, endpoint), listen => listen.UseConnectionHandler<ProxyConnectionHandler>());
                }
            }
        });

        configure?.Invoke(builder);
        var app = builder.Build();

        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("BindProxy");
        foreach (var route in model.Routes)
        {
            Log.Route(logger, route.Name, route.Listen.Text, route.Upstream.Text, route.Sources.Addresses.ToString(),
                route.Sources.Addresses.Count, route.Protocol, route.WiresharkFilter);
        }

        return app;
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Route {Route}: {Listen} → {Upstream} from {Source} ({SourceCount} address(es), {Protocol}); Wireshark: {Filter}")]
        public static partial void Route(ILogger logger, string route, string listen, string upstream, string source, long sourceCount, RouteProtocol protocol, string filter);
    }
}
