using System.Globalization;
using BindProxy.Addressing;
using BindProxy.Capture;
using BindProxy.Forwarding;
using Microsoft.AspNetCore.Http;

namespace BindProxy.Admin;

/// <summary>
/// <c>GET /api/capture</c>: streams pcapng (<c>application/x-pcapng</c>) of the connections the query
/// picks (<c>route</c>, <c>client</c>, <c>source</c>, <c>pid</c>, <c>process</c>, <c>connection</c>,
/// <c>legs</c>) from now on, until the caller leaves or a limit (<c>seconds</c>, <c>packets</c>,
/// <c>bytes</c>) is reached. A query that picks nothing yet waits for the first connection that matches.
/// </summary>
internal static class CaptureEndpoint
{
    public const string ContentType = "application/x-pcapng";

    /// <param name="stopping">The host is stopping: a capture ends then, as a graceful shutdown waits for every request.</param>
    public static async Task HandleAsync(HttpContext context, CaptureHub captures, CancellationToken stopping)
    {
        if (!TryRead(context.Request.Query, out var selector, out var limits, out var error))
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            context.Response.ContentType = "text/plain; charset=utf-8";
            await context.Response.WriteAsync(error + "\n", context.RequestAborted).ConfigureAwait(false);
            return;
        }

        var response = context.Response;
        response.ContentType = ContentType;
        response.Headers.CacheControl = "no-store";
        var name = selector.ClientId ?? selector.Route ?? (selector.Connection is { } id ? $"connection-{id}" : "bindproxy");
        response.Headers.ContentDisposition = $"attachment; filename=\"{Sanitize(name)}-{DateTime.UtcNow:yyyyMMdd-HHmmss}.pcapng\"";
        if (HttpMethods.IsHead(context.Request.Method))
        {
            return;
        }

        using var end = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, stopping);
        var session = captures.Start(selector, limits);
        await captures.RunAsync(session, response.Body, end.Token).ConfigureAwait(false);
    }

    /// <summary>Reads the query; every problem is named in <paramref name="error"/>.</summary>
    internal static bool TryRead(IQueryCollection query, out CaptureSelector selector, out CaptureLimits limits, out string error)
    {
        var problems = new List<string>();
        selector = new CaptureSelector();
        limits = new CaptureLimits();
        var known = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "route", "client", "source", "pid", "process", "connection", "legs", "seconds", "packets", "bytes" };
        foreach (var key in query.Keys.Where(k => !known.Contains(k)))
        {
            problems.Add($"unknown parameter '{key}'; expected {string.Join(", ", known)}");
        }

        AddressSet? source = null;
        if (Text(query, "source") is { } sourceText && !AddressSet.TryParse(sourceText, out source, out var sourceError))
        {
            problems.Add($"source: {sourceError}");
        }

        var legs = CaptureLegs.Both;
        switch (Text(query, "legs")?.ToLowerInvariant())
        {
            case null or "both":
                break;
            case "client":
                legs = CaptureLegs.Client;
                break;
            case "upstream":
                legs = CaptureLegs.Upstream;
                break;
            case var other:
                problems.Add($"legs: '{other}' is not client, upstream or both");
                break;
        }

        selector = new CaptureSelector(
            Text(query, "route"),
            Text(query, "client"),
            source,
            (int?)Number(query, "pid", problems),
            Text(query, "process"),
            Number(query, "connection", problems),
            legs);
        double? seconds = Number(query, "seconds", problems);
        limits = new CaptureLimits(seconds is { } s ? TimeSpan.FromSeconds(s) : null, Number(query, "packets", problems), Number(query, "bytes", problems));
        error = string.Join("; ", problems);
        return problems.Count == 0;
    }

    private static string? Text(IQueryCollection query, string key) =>
        query.TryGetValue(key, out var values) && values.Count > 0 && !string.IsNullOrWhiteSpace(values[^1]) ? values[^1]!.Trim() : null;

    private static long? Number(IQueryCollection query, string key, List<string> problems)
    {
        if (Text(query, key) is not { } text)
        {
            return null;
        }

        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long value) && value > 0 && (key != "pid" || value <= int.MaxValue))
        {
            return value;
        }

        problems.Add($"{key}: '{text}' is not a positive whole number");
        return null;
    }

    private static string Sanitize(string name) =>
        new([.. name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_')]);
}
