using System.CommandLine;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace BindProxy.Cli;

/// <summary>
/// <c>bindproxy kafka tail</c>: follows a running proxy's Kafka conversation through its admin
/// endpoint (<c>/api/kafka/requests?follow=true</c>) and prints one line per request, errors
/// marked. Ctrl-C ends it cleanly; a proxy that goes away is said, with exit code 1.
/// </summary>
internal static class KafkaTailCommand
{
    public const string DefaultAdmin = "127.0.0.1:9901";

    /// <summary>The proxy went away, or was never there.</summary>
    public const int ExitProxyGone = 1;

    private const string Red = "\u001b[31m";
    private const string Bold = "\u001b[1m";
    private const string Reset = "\u001b[0m";

    public static Command Create(Option<string?> admin)
    {
        var client = new Option<string?>("--client") { Description = "Only this client.id.", HelpName = "ID" };
        var api = new Option<string?>("--api") { Description = "Only this API (Produce, Fetch, Metadata, ...).", HelpName = "NAME" };
        var topic = new Option<string?>("--topic") { Description = "Only requests that name this topic (their bodies are decoded while tailed).", HelpName = "T" };
        var errors = new Option<bool>("--errors") { Description = "Only requests whose response names an error, or that got none." };
        var route = new Option<string?>("--route") { Description = "Only this Kafka route (or one of its broker routes).", HelpName = "NAME" };
        var tail = new Command("tail", $"Follow a running proxy's Kafka requests, one line each, as they complete (its admin endpoint: --admin, default {DefaultAdmin}).")
        {
            client, api, topic, errors, route,
        };
        tail.SetAction((parse, cancellationToken) => RunAsync(
            AdminUri(parse.GetValue(admin)),
            Query(parse.GetValue(route), parse.GetValue(client), parse.GetValue(api), parse.GetValue(topic), parse.GetValue(errors)),
            Console.Out,
            Console.Error,
            color: !Console.IsOutputRedirected,
            cancellationToken));
        return new Command("kafka", "Read Kafka clients' conversations through a running proxy.") { tail };
    }

    /// <summary><c>127.0.0.1:9901</c>, <c>http://127.0.0.1:9901/</c> or <c>localhost:9901</c> as the endpoint's base address.</summary>
    public static Uri AdminUri(string? text)
    {
        text = string.IsNullOrWhiteSpace(text) || text.Equals("off", StringComparison.OrdinalIgnoreCase) ? DefaultAdmin : text.Trim();
        if (!text.Contains("://", StringComparison.Ordinal))
        {
            text = "http://" + text;
        }

        return new Uri(text.EndsWith('/') ? text : text + "/");
    }

    public static string Query(string? route, string? client, string? api, string? topic, bool errors)
    {
        var query = new StringBuilder("api/kafka/requests?follow=true");
        void Add(string name, string? value)
        {
            if (!string.IsNullOrEmpty(value))
            {
                query.Append('&').Append(name).Append('=').Append(Uri.EscapeDataString(value));
            }
        }

        Add("route", route);
        Add("client", client);
        Add("api", api);
        Add("topic", topic);
        if (errors)
        {
            query.Append("&errors=true");
        }

        return query.ToString();
    }

    public static async Task<int> RunAsync(Uri admin, string query, TextWriter output, TextWriter error, bool color, CancellationToken stop = default)
    {
        using var interrupted = CancellationTokenSource.CreateLinkedTokenSource(stop);
        void OnCancel(object? sender, ConsoleCancelEventArgs e)
        {
            e.Cancel = true;
            interrupted.Cancel();
        }

        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true;
            interrupted.Cancel();
        }

        Console.CancelKeyPress += OnCancel;
        using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        try
        {
            using var http = new HttpClient { BaseAddress = admin, Timeout = Timeout.InfiniteTimeSpan };
            using var request = new HttpRequestMessage(HttpMethod.Get, query);
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/x-ndjson"));
            HttpResponseMessage response;
            try
            {
                using var connect = CancellationTokenSource.CreateLinkedTokenSource(interrupted.Token);
                connect.CancelAfter(TimeSpan.FromSeconds(10));
                response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, connect.Token).ConfigureAwait(false);
            }
            catch (HttpRequestException e)
            {
                await error.WriteLineAsync($"error: no proxy admin endpoint at {admin}: {Reason(e)}").ConfigureAwait(false);
                return ExitProxyGone;
            }

            using (response)
            {
                if (!response.IsSuccessStatusCode)
                {
                    var text = (await response.Content.ReadAsStringAsync(interrupted.Token).ConfigureAwait(false)).Trim();
                    await error.WriteLineAsync($"error: {admin} answered {(int)response.StatusCode}: {text}").ConfigureAwait(false);
                    return BindProxyCommand.ExitConfigInvalid;
                }

                var filters = query.Replace("api/kafka/requests?follow=true", "", StringComparison.Ordinal).TrimStart('&').Replace('&', ' ');
                await error.WriteLineAsync($"following {admin}{(filters.Length > 0 ? $" ({filters})" : "")}, Ctrl-C to stop").ConfigureAwait(false);
                var stream = await response.Content.ReadAsStreamAsync(interrupted.Token).ConfigureAwait(false);
                using var lines = new StreamReader(stream, Encoding.UTF8);
                try
                {
                    while (await lines.ReadLineAsync(interrupted.Token).ConfigureAwait(false) is { } line)
                    {
                        if (line.Length > 0)
                        {
                            await output.WriteLineAsync(Format(line, color)).ConfigureAwait(false);
                            await output.FlushAsync(interrupted.Token).ConfigureAwait(false);
                        }
                    }
                }
                catch (Exception e) when (e is HttpRequestException or IOException && !interrupted.IsCancellationRequested)
                {
                    // The connection broke rather than ended: the same for the reader.
                }

                await error.WriteLineAsync($"the proxy at {admin} went away").ConfigureAwait(false);
                return ExitProxyGone;
            }
        }
        catch (OperationCanceledException) when (interrupted.IsCancellationRequested)
        {
            await error.WriteLineAsync("stopped").ConfigureAwait(false);
            return BindProxyCommand.ExitOk;
        }
        finally
        {
            Console.CancelKeyPress -= OnCancel;
        }
    }

    /// <summary>
    /// <c>12:01:02.345  orders-producer  127.0.0.2:40112 → kafka/broker-1  Produce v9 #12  1130 B → 62 B  0.41 ms  orders[1] 10 records 1061 bytes</c>;
    /// an error starts with <c>!</c> (and is red on a terminal) and names itself after the latency.
    /// </summary>
    public static string Format(string json, bool color)
    {
        using var document = JsonDocument.Parse(json);
        var r = document.RootElement;
        string? Str(string name) => r.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        var time = r.TryGetProperty("time", out var t) ? t.GetDateTimeOffset().ToLocalTime().ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture) : "";
        var error = Str("error");
        var state = Str("state");
        var text = new StringBuilder();
        text.Append(error is null ? "  " : "! ");
        text.Append(time).Append("  ").Append(Str("clientId") ?? "-").Append("  ");
        text.Append(Str("source") ?? Str("clientAddress")).Append(" → ").Append(Str("route")).Append("  ");
        text.Append(CultureInfo.InvariantCulture, $"{Str("api")} v{r.GetProperty("version").GetInt32()} #{r.GetProperty("correlationId").GetInt32()}  ");
        text.Append(CultureInfo.InvariantCulture, $"{r.GetProperty("requestBytes").GetInt32()} B");
        switch (state)
        {
            case "answered":
                text.Append(CultureInfo.InvariantCulture, $" → {r.GetProperty("responseBytes").GetInt32()} B  {r.GetProperty("latencyMs").GetDouble():0.###} ms");
                break;
            case "no_response":
                text.Append(" (acks=0, no response)");
                break;
            case "unanswered":
                text.Append(" → no response before the connection ended");
                break;
            default:
                break;
        }

        var said = Str("summary");
        if (error is not null && error != "unanswered" && !(said?.Contains(error, StringComparison.Ordinal) ?? false))
        {
            text.Append("  ").Append(color ? Bold + error + Reset + Red : error);
        }

        if (said is { Length: > 0 } summary)
        {
            text.Append("  ").Append(summary);
        }

        if (Str("injected") is { } injected)
        {
            text.Append("  [injected: ").Append(injected).Append(']');
        }

        return error is not null && color ? Red + text + Reset : text.ToString();
    }

    private static string Reason(HttpRequestException e) => e.InnerException is SocketException socket
        ? socket.SocketErrorCode switch
        {
            SocketError.ConnectionRefused => "connection refused (is the proxy running, with its admin endpoint on?)",
            _ => socket.Message,
        }
        : e.Message;
}
