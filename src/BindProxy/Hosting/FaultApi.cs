using System.Collections.Concurrent;
using System.Net;
using System.Reflection;
using System.Text.Encodings.Web;
using System.Text.Json;
using BindProxy.Configuration;
using BindProxy.Faults;
using BindProxy.Forwarding;
using BindProxy.Kafka.Faults;
using BindProxy.Transport;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace BindProxy.Hosting;

/// <summary>
/// toxiproxy's HTTP API (v2) over the proxy's routes, with its shapes, status codes and
/// <c>{"error","status"}</c> bodies, so toxiproxy's clients work unchanged. Every route is a proxy
/// (a Kafka broker listener too, as <c>kafka/broker-1</c>); <c>POST /proxies</c> makes a Tcp route
/// at run time. Requests are served one at a time; none touches a connection's bytes.
/// </summary>
internal sealed partial class FaultApi(
    RouteTable routes,
    FaultTable faults,
    ListenerRegistry listeners,
    ListenerHost host,
    RouteListeners routeListeners,
    ConnectionRegistry connections,
    ConfigValidator validator,
    ILogger<FaultApi> logger) : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);

    // The endpoints a disabled route listened on, to listen there again when it is enabled.
    private readonly ConcurrentDictionary<ServedRoute, IReadOnlyList<IPEndPoint>> _disabled = new();

    private static readonly string Version =
        typeof(FaultApi).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    /// <summary>The largest request body read (a populate of many proxies fits easily).</summary>
    private const int MaxBody = 1 << 20;

    public void Dispose() => _gate.Dispose();

    public async Task HandleAsync(HttpContext context)
    {
        var (status, body) = await DispatchSafelyAsync(context).ConfigureAwait(false);
        var response = context.Response;
        response.StatusCode = status;
        response.Headers.CacheControl = "no-store";
        if (body is not null)
        {
            response.ContentType = "application/json";
            await response.Body.WriteAsync(body, context.RequestAborted).ConfigureAwait(false);
        }
    }

    private async Task<(int Status, byte[]? Body)> DispatchSafelyAsync(HttpContext context)
    {
        try
        {
            await _gate.WaitAsync(context.RequestAborted).ConfigureAwait(false);
            try
            {
                return await DispatchAsync(context).ConfigureAwait(false);
            }
            finally
            {
                _gate.Release();
            }
        }
        catch (OperationCanceledException)
        {
            return Error(StatusCodes.Status400BadRequest, "request aborted");
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Log.Failed(logger, context.Request.Method, context.Request.Path, e);
            return Error(StatusCodes.Status500InternalServerError, e.Message);
        }
    }

    private async Task<(int, byte[]?)> DispatchAsync(HttpContext context)
    {
        var method = context.Request.Method;
        var path = Uri.UnescapeDataString(context.Request.Path.Value ?? "/").TrimEnd('/');
        switch (path)
        {
            case "/version" when HttpMethods.IsGet(method):
                return Json(StatusCodes.Status200OK, w =>
                {
                    w.WriteStartObject();
                    w.WriteString("version", Version);
                    w.WriteEndObject();
                });
            case "/reset" when HttpMethods.IsPost(method):
                await ResetAsync().ConfigureAwait(false);
                return (StatusCodes.Status204NoContent, null);
            case "/populate" when HttpMethods.IsPost(method):
                return await PopulateAsync(context).ConfigureAwait(false);
            case "/proxies" when HttpMethods.IsGet(method):
                return Json(StatusCodes.Status200OK, w =>
                {
                    w.WriteStartObject();
                    foreach (var route in Proxies())
                    {
                        w.WritePropertyName(route.Name);
                        WriteProxy(w, route);
                    }

                    w.WriteEndObject();
                });
            case "/proxies" when HttpMethods.IsPost(method):
                {
                    var (body, problem) = await ReadAsync(context).ConfigureAwait(false);
                    return body is { } json ? await CreateAsync(json).ConfigureAwait(false) : Error(StatusCodes.Status400BadRequest, problem!);
                }
        }

        if (!path.StartsWith("/proxies/", StringComparison.Ordinal))
        {
            return Error(StatusCodes.Status404NotFound, "404 page not found");
        }

        // A proxy's name may hold a slash (kafka/broker-1): the toxics part is found from the end.
        var rest = path["/proxies/".Length..];
        string proxyName;
        string? toxicName = null;
        bool toxics = false;
        int marker = rest.LastIndexOf("/toxics", StringComparison.Ordinal);
        if (marker > 0 && (marker + "/toxics".Length == rest.Length || rest[marker + "/toxics".Length] == '/'))
        {
            proxyName = rest[..marker];
            toxics = true;
            var after = rest[(marker + "/toxics".Length)..].TrimStart('/');
            toxicName = after.Length > 0 ? after : null;
            if (toxicName?.Contains('/', StringComparison.Ordinal) == true)
            {
                return Error(StatusCodes.Status404NotFound, "404 page not found");
            }
        }
        else
        {
            proxyName = rest;
        }

        if (Find(proxyName) is not { } served)
        {
            return Error(StatusCodes.Status404NotFound, "proxy not found");
        }

        if (!toxics)
        {
            return method switch
            {
                _ when HttpMethods.IsGet(method) => Json(StatusCodes.Status200OK, w => WriteProxy(w, served)),
                _ when HttpMethods.IsPost(method) || HttpMethods.IsPatch(method) => await UpdateProxyAsync(context, served).ConfigureAwait(false),
                _ when HttpMethods.IsDelete(method) => await DeleteProxyAsync(served).ConfigureAwait(false),
                _ => Error(StatusCodes.Status405MethodNotAllowed, $"{method} is not allowed here"),
            };
        }

        var routeFaults = faults.For(served.Name);
        if (toxicName is null)
        {
            if (HttpMethods.IsGet(method))
            {
                return Json(StatusCodes.Status200OK, w => WriteToxics(w, routeFaults));
            }

            if (!HttpMethods.IsPost(method))
            {
                return Error(StatusCodes.Status405MethodNotAllowed, $"{method} is not allowed here");
            }

            var (body, problem) = await ReadAsync(context).ConfigureAwait(false);
            if (body is not { } json)
            {
                return Error(StatusCodes.Status400BadRequest, problem!);
            }

            if (ToxicJson.Create(json, out problem, CheckText) is not { } toxic)
            {
                return Error(StatusCodes.Status400BadRequest, problem!);
            }

            if (!routeFaults.TryAdd(toxic))
            {
                return Error(StatusCodes.Status409Conflict, "toxic already exists");
            }

            Log.ToxicAdded(logger, served.Name, toxic.Name, toxic.Describe());
            return Json(StatusCodes.Status200OK, w => ToxicJson.Write(w, toxic));
        }

        if (routeFaults.Find(toxicName) is not { } existing)
        {
            return Error(StatusCodes.Status404NotFound, "toxic not found");
        }

        if (HttpMethods.IsGet(method))
        {
            return Json(StatusCodes.Status200OK, w => ToxicJson.Write(w, existing));
        }

        if (HttpMethods.IsDelete(method))
        {
            routeFaults.Remove(toxicName);
            Log.ToxicRemoved(logger, served.Name, toxicName);
            return (StatusCodes.Status204NoContent, null);
        }

        if (HttpMethods.IsPost(method) || HttpMethods.IsPatch(method))
        {
            var (body, problem) = await ReadAsync(context).ConfigureAwait(false);
            if (body is not { } json)
            {
                return Error(StatusCodes.Status400BadRequest, problem!);
            }

            if (ToxicJson.Update(existing, json, out problem, CheckText) is not { } updated)
            {
                return Error(StatusCodes.Status400BadRequest, problem!);
            }

            routeFaults.TryReplace(updated);
            Log.ToxicChanged(logger, served.Name, updated.Name, updated.Describe());
            return Json(StatusCodes.Status200OK, w => ToxicJson.Write(w, updated));
        }

        return Error(StatusCodes.Status405MethodNotAllowed, $"{method} is not allowed here");
    }

    /// <summary>A Kafka toxic's <c>api</c> must name an API the proxy knows, its <c>error</c> an error, its <c>topic</c> a regex.</summary>
    internal static string? CheckText(string attribute, string value) => KafkaFaultHook.CheckText(attribute, value);

    /// <summary>Every route served, configured ones first, then the routes they opened, by name.</summary>
    private IEnumerable<ServedRoute> Proxies() =>
        routes.Roots.Concat(routes.Roots.SelectMany(r => r.Members).OrderBy(r => r.Name, StringComparer.Ordinal));

    private ServedRoute? Find(string name) => routes.All.FirstOrDefault(r => r.Name == name);

    private async Task<(int, byte[]?)> CreateAsync(JsonElement body)
    {
        var (served, status, problem) = await CreateRouteAsync(body).ConfigureAwait(false);
        return served is null ? Error(status, problem!) : Json(StatusCodes.Status201Created, w => WriteProxy(w, served));
    }

    /// <summary>Makes a Tcp route from a toxiproxy proxy body: <c>{"name","listen","upstream","enabled"}</c>, and BindProxy's own <c>source</c>.</summary>
    private async Task<(ServedRoute? Route, int Status, string? Problem)> CreateRouteAsync(JsonElement body)
    {
        if (body.ValueKind != JsonValueKind.Object)
        {
            return (null, StatusCodes.Status400BadRequest, "bad request body: expected a JSON object");
        }

        string? Text(string key) => body.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        var name = Text("name");
        var listen = Text("listen");
        var upstream = Text("upstream");
        if (string.IsNullOrWhiteSpace(name) || string.IsNullOrWhiteSpace(listen) || string.IsNullOrWhiteSpace(upstream))
        {
            return (null, StatusCodes.Status400BadRequest, "missing required field: name, listen and upstream are required");
        }

        if (Find(name) is not null)
        {
            return (null, StatusCodes.Status409Conflict, "proxy already exists");
        }

        // toxiproxy's clients often listen on "localhost:PORT"; BindProxy listens on addresses.
        if (listen.StartsWith("localhost:", StringComparison.OrdinalIgnoreCase))
        {
            listen = "127.0.0.1" + listen["localhost".Length..];
        }

        var source = Text("source") ?? (listen.StartsWith('[') ? "::1" : "127.0.0.1");
        var result = await validator.ValidateAsync(new ProxyConfig { Routes = [new RouteConfig { Name = name, Listen = listen, Upstream = upstream, Source = source }] }, CancellationToken.None).ConfigureAwait(false);
        if (!result.IsValid)
        {
            return (null, StatusCodes.Status400BadRequest, ProblemReport.Describe(result.Errors));
        }

        if (routes.AddRuntime(result.Model!.Routes[0]) is not { } served)
        {
            return (null, StatusCodes.Status409Conflict, "proxy already exists");
        }

        var bound = await routeListeners.OpenAsync(served).ConfigureAwait(false);
        if (bound.Count == 0)
        {
            routes.RemoveRuntime(served);
            return (null, StatusCodes.Status409Conflict, $"cannot listen on {listen}");
        }

        Log.ProxyCreated(logger, name, string.Join(", ", bound), upstream, source);
        if (body.TryGetProperty("enabled", out var enabled) && enabled.ValueKind == JsonValueKind.False)
        {
            await SetEnabledAsync(served, false).ConfigureAwait(false);
        }

        return (served, StatusCodes.Status201Created, null);
    }

    private async Task<(int, byte[]?)> UpdateProxyAsync(HttpContext context, ServedRoute served)
    {
        var (body, problem) = await ReadAsync(context).ConfigureAwait(false);
        if (body is not { } json || json.ValueKind != JsonValueKind.Object)
        {
            return Error(StatusCodes.Status400BadRequest, problem ?? "bad request body: expected a JSON object");
        }

        if (json.TryGetProperty("upstream", out var upstream) && upstream.ValueKind == JsonValueKind.String && upstream.GetString() != served.Model.Upstream.Text)
        {
            return Error(StatusCodes.Status400BadRequest, $"the upstream of {served.Name} cannot change here; it is {served.Model.Upstream.Text}");
        }

        if (json.TryGetProperty("enabled", out var enabled) && enabled.ValueKind is JsonValueKind.True or JsonValueKind.False)
        {
            if (await SetEnabledAsync(served, enabled.ValueKind == JsonValueKind.True).ConfigureAwait(false) is { } error)
            {
                return Error(StatusCodes.Status409Conflict, error);
            }
        }

        return Json(StatusCodes.Status200OK, w => WriteProxy(w, served));
    }

    private async Task<(int, byte[]?)> DeleteProxyAsync(ServedRoute served)
    {
        if (!served.IsRuntime)
        {
            return Error(StatusCodes.Status409Conflict, $"{served.Name} is a route of the configuration file; disable it (enabled: false) or edit the file");
        }

        _disabled.TryRemove(served, out _);
        await routeListeners.RetireFamilyAsync(served).ConfigureAwait(false);
        routes.RemoveRuntime(served);
        foreach (var member in served.Family)
        {
            faults.Forget(member.Name);
        }

        Log.ProxyDeleted(logger, served.Name);
        return (StatusCodes.Status204NoContent, null);
    }

    /// <summary>
    /// Disabling stops the route's listeners (a client is refused, as by a crashed server) and
    /// resets its connections; enabling listens again where it listened. Null, or why it could not.
    /// </summary>
    private async Task<string?> SetEnabledAsync(ServedRoute served, bool enabled)
    {
        var routeFaults = faults.For(served.Name);
        if (!routeFaults.SetEnabled(enabled))
        {
            return null;
        }

        if (!enabled)
        {
            _disabled[served] = listeners.For(served);
            await listeners.UnbindAsync(served).ConfigureAwait(false);
            int reset = 0;
            foreach (var connection in connections.Snapshot().Where(c => c.Served == served))
            {
                connection.Abort(CloseReason.ProxyAborted);
                reset++;
            }

            Log.Disabled(logger, served.Name, reset);
            return null;
        }

        var endpoints = _disabled.TryRemove(served, out var were) ? were : served.Model.Listen.Endpoints;
        var failed = new List<string>();
        foreach (var endpoint in endpoints)
        {
            var result = await host.BindAsync(served, endpoint, CancellationToken.None).ConfigureAwait(false);
            if (!result.IsBound)
            {
                failed.Add(result.Error);
            }
        }

        Log.Enabled(logger, served.Name, string.Join(", ", listeners.For(served)));
        return failed.Count == 0 ? null : string.Join("; ", failed);
    }

    private async Task ResetAsync()
    {
        foreach (var served in Proxies().ToList())
        {
            await SetEnabledAsync(served, true).ConfigureAwait(false);
        }

        foreach (var routeFaults in faults.All)
        {
            foreach (var toxic in routeFaults.Clear())
            {
                Log.ToxicRemoved(logger, routeFaults.Route, toxic.Name);
            }
        }
    }

    /// <summary>Makes each proxy of the body's array that does not exist yet; an existing one takes its <c>enabled</c>.</summary>
    private async Task<(int, byte[]?)> PopulateAsync(HttpContext context)
    {
        var (body, problem) = await ReadAsync(context).ConfigureAwait(false);
        if (body is not { ValueKind: JsonValueKind.Array } list)
        {
            return Error(StatusCodes.Status400BadRequest, problem ?? "bad request body: expected a JSON array of proxies");
        }

        var populated = new List<ServedRoute>();
        foreach (var item in list.EnumerateArray())
        {
            var name = item.ValueKind == JsonValueKind.Object && item.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
            if (name is not null && Find(name) is { } existing)
            {
                if (item.TryGetProperty("enabled", out var enabled) && enabled.ValueKind is JsonValueKind.True or JsonValueKind.False)
                {
                    await SetEnabledAsync(existing, enabled.ValueKind == JsonValueKind.True).ConfigureAwait(false);
                }

                populated.Add(existing);
                continue;
            }

            var (served, status, error) = await CreateRouteAsync(item).ConfigureAwait(false);
            if (served is null)
            {
                return Json(status, w =>
                {
                    w.WriteStartObject();
                    w.WriteString("error", error);
                    w.WriteNumber("status", status);
                    WriteProxyList(w, populated);
                    w.WriteEndObject();
                });
            }

            populated.Add(served);
        }

        return Json(StatusCodes.Status201Created, w =>
        {
            w.WriteStartObject();
            WriteProxyList(w, populated);
            w.WriteEndObject();
        });
    }

    private void WriteProxyList(Utf8JsonWriter w, List<ServedRoute> proxies)
    {
        w.WriteStartArray("proxies");
        foreach (var served in proxies)
        {
            WriteProxy(w, served);
        }

        w.WriteEndArray();
    }

    private void WriteProxy(Utf8JsonWriter w, ServedRoute served)
    {
        var route = served.Model;
        var routeFaults = faults.Find(served.Name);
        var bound = listeners.For(served);
        var listen = bound.Count > 0 ? bound[0].ToString()
            : _disabled.TryGetValue(served, out var were) && were.Count > 0 ? were[0].ToString()
            : route.Listen.Text;
        w.WriteStartObject();
        w.WriteString("name", served.Name);
        w.WriteString("listen", listen);
        w.WriteString("upstream", route.Upstream.Text);
        w.WriteBoolean("enabled", routeFaults?.Enabled ?? true);
        w.WritePropertyName("toxics");
        WriteToxics(w, routeFaults);
        w.WriteEndObject();
    }

    private static void WriteToxics(Utf8JsonWriter w, RouteFaults? routeFaults)
    {
        w.WriteStartArray();
        foreach (var toxic in routeFaults?.Toxics ?? [])
        {
            ToxicJson.Write(w, toxic);
        }

        w.WriteEndArray();
    }

    private static async Task<(JsonElement? Body, string? Problem)> ReadAsync(HttpContext context)
    {
        if (context.Request.ContentLength > MaxBody)
        {
            return (null, $"bad request body: larger than {MaxBody} bytes");
        }

        try
        {
            using var document = await JsonDocument.ParseAsync(context.Request.Body, default, context.RequestAborted).ConfigureAwait(false);
            return (document.RootElement.Clone(), null);
        }
        catch (JsonException e)
        {
            return (null, $"bad request body: {e.Message}");
        }
    }

    private static (int, byte[]?) Error(int status, string message) => Json(status, w =>
    {
        w.WriteStartObject();
        w.WriteString("error", message);
        w.WriteNumber("status", status);
        w.WriteEndObject();
    });

    private static (int, byte[]?) Json(int status, Action<Utf8JsonWriter> write)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            write(writer);
        }

        return (status, stream.ToArray());
    }

    public static void LogListening(ILogger logger, string url, bool loopback)
    {
        if (loopback)
        {
            Log.Listening(logger, url);
        }
        else
        {
            Log.ListeningExposed(logger, url);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(970, LogLevel.Information, "Faults: route {Route}: toxic {Toxic} added: {Toxicdescription}")]
        public static partial void ToxicAdded(ILogger logger, string route, string toxic, string toxicdescription);

        [LoggerMessage(971, LogLevel.Information, "Faults: route {Route}: toxic {Toxic} changed: {Toxicdescription}")]
        public static partial void ToxicChanged(ILogger logger, string route, string toxic, string toxicdescription);

        [LoggerMessage(972, LogLevel.Information, "Faults: route {Route}: toxic {Toxic} removed")]
        public static partial void ToxicRemoved(ILogger logger, string route, string toxic);

        [LoggerMessage(973, LogLevel.Warning, "Faults: route {Route} disabled: not listening; {Count} connection(s) reset")]
        public static partial void Disabled(ILogger logger, string route, int count);

        [LoggerMessage(974, LogLevel.Information, "Faults: route {Route} enabled: listening on {Endpoints}")]
        public static partial void Enabled(ILogger logger, string route, string endpoints);

        [LoggerMessage(975, LogLevel.Information, "Faults: route {Route} created at run time (not in the configuration file): {Listen} → {Upstream} from {Source}")]
        public static partial void ProxyCreated(ILogger logger, string route, string listen, string upstream, string source);

        [LoggerMessage(976, LogLevel.Information, "Faults: route {Route} deleted")]
        public static partial void ProxyDeleted(ILogger logger, string route);

        [LoggerMessage(977, LogLevel.Error, "Faults: {Method} {Path} failed")]
        public static partial void Failed(ILogger logger, string method, string path, Exception exception);

        [LoggerMessage(978, LogLevel.Information, "Fault API (toxiproxy v2) on {Url}")]
        public static partial void Listening(ILogger logger, string url);

        [LoggerMessage(979, LogLevel.Warning, "Fault API on {Url} is reachable from other machines (Faults:AllowNonLoopback); it has no authentication and can break every route's traffic")]
        public static partial void ListeningExposed(ILogger logger, string url);
    }
}
