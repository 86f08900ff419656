using System.Diagnostics.Metrics;
using System.Net;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using BindProxy.Configuration;
using BindProxy.Forwarding;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace BindProxy.Admin;

/// <summary>
/// The admin HTTP endpoint on its own Kestrel listener: <c>/healthz</c>, <c>/metrics</c>,
/// <c>/api/routes</c>, <c>/api/connections</c>, <c>/api/assignments</c>, <c>/api/status</c>,
/// <c>/api/kafka/requests</c>, <c>/api/kafka/clients</c>, <c>/api/capture</c> and
/// the status page at <c>/</c>. Proxy listeners run connection middleware, not HTTP, so these
/// routes are reachable on the admin listener only.
/// </summary>
internal sealed partial class AdminEndpoint(AdminModel model)
{
    // Filters such as ip.addr==127.0.0.2 && tcp.port==9092 read as written (the default escapes & and ');
    // the API serves application/json only, never inside HTML.
    private static readonly AdminJsonContext JsonContext = new(new JsonSerializerOptions(JsonSerializerDefaults.Web)
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    private ListenOptions? _listenOptions;

    public AdminModel Model => model;

    /// <summary>The address actually bound (its real port when the configured one is 0); null before start.</summary>
    public IPEndPoint? BoundEndPoint => _listenOptions?.IPEndPoint is { Port: not 0 } bound ? bound : null;

    public static void Add(WebApplicationBuilder builder, AdminModel model)
    {
        var endpoint = new AdminEndpoint(model);
        var services = builder.Services;
        services.AddSingleton(endpoint);
        services.AddSingleton<IClientAssignments, LiveConnectionAssignments>();
        services.AddSingleton<AdminApi>();
        services.AddSingleton<KafkaRequestsApi>();
        services.AddRoutingCore();
        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("bindproxy"))
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(ProxyMetrics.MeterName);

                // A meter is found by its name across the whole process; this host's are the ones its
                // own factory made (another proxy host in the process, e.g. an embedding application,
                // would otherwise show its routes and counts here too).
                ((IDeferredMeterProviderBuilder)metrics).Configure((services, builder) =>
                {
                    var own = services.GetRequiredService<IMeterFactory>();
                    builder.AddView(instrument => ReferenceEquals(instrument.Meter.Scope, own) ? null : MetricStreamConfiguration.Drop);
                });

                // Every scrape collects afresh: a cached answer would hide a connection that just closed.
                metrics.AddPrometheusExporter(prometheus => prometheus.ScrapeResponseCacheDurationMilliseconds = 0);
            });

        // The proxy's own transport binds route endpoints only; an IPEndPoint goes to Kestrel's sockets.
        builder.WebHost.UseSockets();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(model.Listen, listen =>
        {
            listen.Protocols = HttpProtocols.Http1;
            listen.Use(next => connection =>
            {
                connection.Features.Set(AdminConnection.Instance);
                return next(connection);
            });
            endpoint._listenOptions = listen;
        }));
    }

    public static void Map(WebApplication app)
    {
        var endpoint = app.Services.GetRequiredService<AdminEndpoint>();
        var api = app.Services.GetRequiredService<AdminApi>();
        var kafka = app.Services.GetRequiredService<KafkaRequestsApi>();
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger<AdminEndpoint>();

        // Http routes share the HTTP pipeline; only the admin listener's connections get this far.
        app.Use((context, next) =>
        {
            if (context.Features.Get<AdminConnection>() is null)
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return Task.CompletedTask;
            }

            return next(context);
        });
        if (!endpoint.Model.AllowNonLoopback)
        {
            app.Use(RejectForeignHosts);
        }

        // HEAD is GET without the body (Kestrel sends the headers only), as health checkers expect.
        string[] getAndHead = [HttpMethods.Get, HttpMethods.Head];
        app.MapMethods("/healthz", getAndHead, context => Text(context, "ok\n"));
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapMethods("/api/routes", getAndHead, context => Json(context, api.Routes(), JsonContext.IReadOnlyListRouteView));
        app.MapMethods("/api/connections", getAndHead, context => Json(context, api.Connections(), JsonContext.IReadOnlyListConnectionView));
        app.MapMethods("/api/assignments", getAndHead, context => Json(context, api.Assignments(), JsonContext.IReadOnlyListAssignmentView));
        app.MapMethods("/api/status", getAndHead, context => Json(context, api.Status(), JsonContext.StatusView));
        app.MapMethods("/api/kafka/requests", getAndHead, context => kafka.RequestsAsync(context, JsonContext.KafkaRequestView, JsonContext.IReadOnlyListKafkaRequestView));
        app.MapMethods("/api/kafka/clients", getAndHead, context => Json(context, kafka.Clients(context), JsonContext.KafkaConversationsView));
        var captures = app.Services.GetRequiredService<CaptureHub>();
        var stopping = app.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
        app.MapMethods("/api/capture", getAndHead, context => CaptureEndpoint.HandleAsync(context, captures, stopping));
        app.MapMethods("/", getAndHead, context => Asset(context, "index.html"));
        foreach (var name in StatusPageAssets.Names.Where(n => n != "index.html"))
        {
            app.MapMethods("/" + name, getAndHead, context => Asset(context, name));
        }

        app.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStarted.Register(() =>
        {
            var url = $"http://{endpoint.BoundEndPoint}/";
            if (endpoint.Model.IsLoopback)
            {
                Log.Listening(logger, url);
            }
            else
            {
                Log.ListeningExposed(logger, url);
            }
        });
    }

    /// <summary>
    /// A loopback-only endpoint answers only to IP-literal or localhost Host headers, so a web
    /// page on some other name cannot read it through DNS rebinding.
    /// </summary>
    private static Task RejectForeignHosts(HttpContext context, RequestDelegate next)
    {
        var host = context.Request.Host.Host;
        if (IPAddress.TryParse(host.Trim('[', ']'), out _) || string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            return next(context);
        }

        context.Response.StatusCode = StatusCodes.Status421MisdirectedRequest;
        return Text(context, "the admin endpoint answers to an IP address or localhost only\n");
    }

    private static Task Text(HttpContext context, string text)
    {
        context.Response.ContentType = "text/plain; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        return context.Response.WriteAsync(text, context.RequestAborted);
    }

    private static Task Json<T>(HttpContext context, T value, JsonTypeInfo<T> type)
    {
        context.Response.Headers.CacheControl = "no-store";
        return context.Response.WriteAsJsonAsync(value, type, contentType: null, context.RequestAborted);
    }

    private static Task Asset(HttpContext context, string name)
    {
        if (!StatusPageAssets.TryGet(name, out var content, out var contentType))
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return Task.CompletedTask;
        }

        var headers = context.Response.Headers;
        headers.ContentType = contentType;
        headers.ContentLength = content.Length;
        headers.CacheControl = "no-cache";
        headers.XContentTypeOptions = "nosniff";
        // Everything the page uses comes from this endpoint; the policy makes that a rule, not a habit.
        headers.ContentSecurityPolicy = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
        headers["Referrer-Policy"] = "no-referrer";
        return context.Response.Body.WriteAsync(content, context.RequestAborted).AsTask();
    }

    /// <summary>Marks a connection accepted on the admin listener.</summary>
    private sealed class AdminConnection
    {
        public static readonly AdminConnection Instance = new();
    }

    private static partial class Log
    {
        [LoggerMessage(800, LogLevel.Information, "Admin endpoint on {Url}: status page /, Prometheus /metrics, JSON /api/routes, /api/connections, /api/assignments, /api/kafka/requests, pcapng /api/capture")]
        public static partial void Listening(ILogger logger, string url);

        [LoggerMessage(801, LogLevel.Warning, "Admin endpoint on {Url} is reachable from other machines (Admin:AllowNonLoopback); it has no authentication and shows every client's addresses")]
        public static partial void ListeningExposed(ILogger logger, string url);
    }
}
