using System.Diagnostics;
using System.Net;
using BindProxy.Configuration;
using BindProxy.Forwarding;
using BindProxy.Transport;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace BindProxy.Http;

/// <summary>
/// Forwards one request that arrived on an Http route's listener to the route's upstream through
/// YARP's <see cref="IHttpForwarder"/>, and turns a failure into a response that names the route.
/// </summary>
internal sealed partial class HttpRouteProxy
{
    private readonly HttpRouteClients _clients;
    private readonly SourceAssigner _assigner;
    private readonly IHttpForwarder _forwarder;
    private readonly ProxyMetrics _metrics;
    private readonly ILogger<HttpRouteProxy> _logger;

    // YARP's transforms: the original Host is replaced by the upstream's, and X-Forwarded-For,
    // -Proto, -Host and -Prefix are set (replacing what the client sent) unless turned off. Either
    // way the request carries its origin, for an upstream connection opened to send it.
    private readonly HttpTransformer _withForwarded;
    private readonly HttpTransformer _withoutForwarded;

    public HttpRouteProxy(HttpRouteClients clients, SourceAssigner assigner, IHttpForwarder forwarder, ITransformBuilder transforms,
        ProxyMetrics metrics, ILogger<HttpRouteProxy> logger)
    {
        _clients = clients;
        _assigner = assigner;
        _forwarder = forwarder;
        _metrics = metrics;
        _logger = logger;
        _withForwarded = transforms.Create(context =>
        {
            context.UseDefaultForwarders = true;
            context.AddRequestTransform(TagOrigin);
        });
        _withoutForwarded = transforms.Create(context =>
        {
            context.UseDefaultForwarders = false;
            context.AddRequestTransform(TagOrigin);
        });
    }

    private static ValueTask TagOrigin(RequestTransformContext context)
    {
        var connection = context.HttpContext.Connection;
        context.ProxyRequest.Options.Set(HttpRouteClients.Origin, new HttpRequestOrigin(
            new IPEndPoint(connection.RemoteIpAddress ?? IPAddress.Any, connection.RemotePort),
            new IPEndPoint(connection.LocalIpAddress ?? IPAddress.Any, connection.LocalPort)));
        return ValueTask.CompletedTask;
    }

    public async Task ForwardAsync(HttpContext context, ServedRoute served)
    {
        var route = served.Model;
        if (served.IsRemoved || route.Http is not { } settings)
        {
            // A request on a connection the route's drain has not closed yet (it closes after this one).
            Log.RouteGone(_logger, served.Name, context.Connection.RemoteIpAddress);
            _metrics.Responded(served.Name, StatusCodes.Status503ServiceUnavailable, byProxy: true);
            await WriteErrorAsync(context, StatusCodes.Status503ServiceUnavailable, $"BindProxy route '{served.Name}' is no longer configured").ConfigureAwait(false);
            return;
        }

        // The upstream decides what body size it accepts; the proxy only passes bytes on.
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodySize)
        {
            bodySize.MaxRequestBodySize = null;
        }

        // Per-client assignment: the request goes out from its client's own address, over that
        // address's own connections.
        var connection = context.Connection;
        var (lease, refused) = await _assigner.AssignAsync(route,
            new IPEndPoint(connection.RemoteIpAddress ?? IPAddress.Loopback, connection.RemotePort),
            new IPEndPoint(connection.LocalIpAddress ?? IPAddress.Loopback, connection.LocalPort), kafkaClientId: null).ConfigureAwait(false);
        if (refused)
        {
            _metrics.Responded(route.Name, StatusCodes.Status503ServiceUnavailable, byProxy: true);
            await WriteErrorAsync(context, StatusCodes.Status503ServiceUnavailable,
                $"BindProxy route '{route.Name}': every source address is assigned to another client and WhenExhausted is refuse").ConfigureAwait(false);
            return;
        }

        using var held = lease;
        long started = Stopwatch.GetTimestamp();
        var client = _clients.For(served, route, lease?.Assignment.Address);
        var config = new ForwarderRequestConfig
        {
            ActivityTimeout = settings.RequestTimeout,

            // Cleartext upstreams speak HTTP/1.1 (no h2c upgrade); HTTP/2 clients are served all the same.
            Version = HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionOrLower,
        };

        var error = await _forwarder.SendAsync(context, client.DestinationPrefix, client.Invoker, config,
            settings.XForwarded ? _withForwarded : _withoutForwarded, context.RequestAborted).ConfigureAwait(false);

        double elapsedMs = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        if (error == ForwarderError.None)
        {
            _metrics.Responded(route.Name, context.Response.StatusCode, byProxy: false);
            Log.Forwarded(_logger, route.Name, context.Connection.RemoteIpAddress, context.Request.Method, context.Request.Path, context.Request.Protocol,
                context.Response.StatusCode, elapsedMs);
            return;
        }

        var exception = context.Features.Get<IForwarderErrorFeature>()?.Exception;
        if (IsClientSide(error))
        {
            // The client left; what it had been sent, if anything, was the upstream's status.
            if (context.Response.HasStarted)
            {
                _metrics.Responded(route.Name, context.Response.StatusCode, byProxy: false);
            }

            Log.ClientGone(_logger, route.Name, context.Connection.RemoteIpAddress, context.Request.Method, context.Request.Path, error, elapsedMs);
            return;
        }

        // The one log line of a failed request (YARP's own is silenced at the host); the stack
        // trace only when the connector's words do not already say everything.
        string detail = Describe(error, exception, settings, out bool connectFailed);
        Log.Failed(_logger, route.Name, context.Connection.RemoteIpAddress, context.Request.Method, context.Request.Path, error, detail, elapsedMs,
            connectFailed ? null : exception);
        if (context.Response.HasStarted)
        {
            // The upstream's status went out before its body failed.
            _metrics.Responded(route.Name, context.Response.StatusCode, byProxy: false);
        }
        else
        {
            // YARP has chosen the status (502, or 504 for a timeout); the body says why, for the
            // person reading it in a client's error message.
            int status = context.Response.StatusCode >= 400 ? context.Response.StatusCode : StatusCodes.Status502BadGateway;
            _metrics.Responded(route.Name, status, byProxy: true);
            await WriteErrorAsync(context, status, $"BindProxy route '{route.Name}': upstream {route.Upstream}: {detail}").ConfigureAwait(false);
        }
    }

    private static bool IsClientSide(ForwarderError error) => error is ForwarderError.RequestCanceled or ForwarderError.RequestBodyCanceled
        or ForwarderError.RequestBodyClient or ForwarderError.ResponseBodyCanceled or ForwarderError.ResponseBodyClient
        or ForwarderError.UpgradeRequestCanceled or ForwarderError.UpgradeRequestClient or ForwarderError.UpgradeResponseCanceled
        or ForwarderError.UpgradeResponseClient;

    private static string Describe(ForwarderError error, Exception? exception, HttpRouteSettings settings, out bool connectFailed)
    {
        connectFailed = false;
        if (error is ForwarderError.RequestTimedOut or ForwarderError.UpgradeActivityTimeout)
        {
            return $"no activity within RequestTimeout {settings.RequestTimeout.TotalSeconds:0.###} s ({error})";
        }

        // The connector's own words when the connection could not be made at all.
        for (var inner = exception; inner is not null; inner = inner.InnerException)
        {
            if (inner is UpstreamConnectException connect)
            {
                connectFailed = true;
                return connect.Message;
            }
        }

        var innermost = exception;
        while (innermost?.InnerException is not null)
        {
            innermost = innermost.InnerException;
        }

        return innermost is null ? error.ToString() : $"{error}: {innermost.Message}";
    }

    private static async Task WriteErrorAsync(HttpContext context, int status, string message)
    {
        context.Response.Clear();
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        await context.Response.WriteAsync(message + "\n", context.RequestAborted).ConfigureAwait(false);
    }

    private static partial class Log
    {
        [LoggerMessage(610, LogLevel.Information, "{Route}: {Client} {Method} {Path} {Protocol} → {Status} in {ElapsedMs:0.0} ms")]
        public static partial void Forwarded(ILogger logger, string route, IPAddress? client, string method, PathString path, string protocol, int status, double elapsedMs);

        [LoggerMessage(611, LogLevel.Warning, "{Route}: {Client} {Method} {Path} failed: {Error}: {Detail} (after {ElapsedMs:0} ms)")]
        public static partial void Failed(ILogger logger, string route, IPAddress? client, string method, PathString path, ForwarderError error, string detail, double elapsedMs, Exception? exception);

        [LoggerMessage(612, LogLevel.Debug, "{Route}: {Client} {Method} {Path} ended by the client: {Error} (after {ElapsedMs:0} ms)")]
        public static partial void ClientGone(ILogger logger, string route, IPAddress? client, string method, PathString path, ForwarderError error, double elapsedMs);

        [LoggerMessage(613, LogLevel.Warning, "Request from {Client} arrived on route {Route}, which is no longer configured; answered 503")]
        public static partial void RouteGone(ILogger logger, string route, IPAddress? client);
    }
}
