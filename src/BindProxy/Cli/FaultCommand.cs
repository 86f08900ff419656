using System.CommandLine;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace BindProxy.Cli;

/// <summary>
/// <c>bindproxy fault list|add|remove</c>: a terminal's way to the running proxy's fault API
/// (toxiproxy's HTTP API on <c>Faults:Listen</c>).
/// </summary>
internal static class FaultCommand
{
    public static Command Create()
    {
        var api = new Option<string>("--api")
        {
            Description = "The fault API's address (the proxy's Faults:Listen).",
            DefaultValueFactory = _ => "127.0.0.1:8474",
            HelpName = "ADDR:PORT",
            Recursive = true,
        };
        var fault = new Command("fault", "List, add or remove toxics on a running proxy's routes through its fault API.");
        fault.Options.Add(api);

        var list = new Command("list", "Every route (toxiproxy proxy) and its toxics.");
        list.SetAction((parse, cancellationToken) => ListAsync(parse.GetValue(api)!, cancellationToken));
        fault.Subcommands.Add(list);

        var route = new Argument<string>("ROUTE") { Description = "The route (a broker listener: kafka/broker-1)." };
        var type = new Option<string>("--type", "-t") { Description = "latency, bandwidth, slow_close, timeout, reset_peer, slicer or limit_data.", Required = true };
        var name = new Option<string?>("--name", "-n") { Description = "The toxic's name (default: TYPE_STREAM)." };
        var stream = new Option<string?>("--stream", "-s") { Description = "upstream or downstream (default)." };
        var toxicity = new Option<double?>("--toxicity") { Description = "Share of connections it applies to, 0 to 1 (default 1)." };
        var attributes = new Option<string[]>("--attribute", "-a") { Description = "An attribute, NAME=VALUE (latency=100, api=Produce, error=NOT_LEADER_OR_FOLLOWER); repeat for more.", AllowMultipleArgumentsPerToken = true };
        var match = new Option<string[]>("--match", "-m") { Description = "Aim it: client_id=REGEX, source=ADDRESSES, pid=N or process=NAME; repeat for more.", AllowMultipleArgumentsPerToken = true };
        var add = new Command("add", "Add a toxic to a route.") { route, type, name, stream, toxicity, attributes, match };
        add.SetAction((parse, cancellationToken) => AddAsync(parse.GetValue(api)!, parse.GetValue(route)!, parse.GetValue(type)!, parse.GetValue(name), parse.GetValue(stream),
            parse.GetValue(toxicity), parse.GetValue(attributes) ?? [], parse.GetValue(match) ?? [], cancellationToken));
        fault.Subcommands.Add(add);

        var removeRoute = new Argument<string>("ROUTE") { Description = "The route." };
        var toxic = new Argument<string>("TOXIC") { Description = "The toxic's name." };
        var remove = new Command("remove", "Remove a toxic from a route.") { removeRoute, toxic };
        remove.SetAction((parse, cancellationToken) => RemoveAsync(parse.GetValue(api)!, parse.GetValue(removeRoute)!, parse.GetValue(toxic)!, cancellationToken));
        fault.Subcommands.Add(remove);
        return fault;
    }

    private static HttpClient Client(string api) => new() { BaseAddress = new Uri(api.Contains("://", StringComparison.Ordinal) ? api : $"http://{api}/"), Timeout = TimeSpan.FromSeconds(10) };

    private static async Task<int> ListAsync(string api, CancellationToken cancellationToken)
    {
        return await CallAsync(api, async http =>
        {
            using var response = await http.GetAsync(new Uri("proxies", UriKind.Relative), cancellationToken).ConfigureAwait(false);
            var body = await CheckAsync(response, cancellationToken).ConfigureAwait(false);
            foreach (var proxy in body.EnumerateObject())
            {
                var p = proxy.Value;
                Console.Out.WriteLine($"{proxy.Name}  {p.GetProperty("listen").GetString()} → {p.GetProperty("upstream").GetString()}{(p.GetProperty("enabled").GetBoolean() ? "" : "  (disabled)")}");
                foreach (var t in p.GetProperty("toxics").EnumerateArray())
                {
                    var attributes = string.Join(' ', t.GetProperty("attributes").EnumerateObject().Select(a => $"{a.Name}={a.Value.GetRawText()}"));
                    var aimed = t.TryGetProperty("match", out var m) ? "  only " + string.Join(' ', m.EnumerateObject().Select(a => $"{a.Name}={a.Value}")) : "";
                    var origin = t.TryGetProperty("origin", out var o) && o.ValueKind == JsonValueKind.String && o.GetString() == "file" ? "  (from the configuration file)" : "";
                    Console.Out.WriteLine($"  {t.GetProperty("name").GetString()}: {t.GetProperty("type").GetString()} {t.GetProperty("stream").GetString()} toxicity {t.GetProperty("toxicity").GetDouble().ToString(CultureInfo.InvariantCulture)}  {attributes}{aimed}{origin}");
                }
            }

            return BindProxyCommand.ExitOk;
        }).ConfigureAwait(false);
    }

    private static async Task<int> AddAsync(string api, string route, string type, string? name, string? stream, double? toxicity, string[] attributes, string[] match, CancellationToken cancellationToken)
    {
        var body = new JsonObject { ["type"] = type };
        if (name is not null)
        {
            body["name"] = name;
        }

        if (stream is not null)
        {
            body["stream"] = stream;
        }

        if (toxicity is { } t)
        {
            body["toxicity"] = t;
        }

        var attributeObject = new JsonObject();
        foreach (var pair in attributes)
        {
            if (Split(pair) is not var (key, value) || value.Length == 0)
            {
                Console.Error.WriteLine($"error: --attribute '{pair}': expected NAME=VALUE, such as latency=100 or api=Produce");
                return BindProxyCommand.ExitConfigInvalid;
            }

            // As JSON would have it: a number, true or false, else text (a Kafka toxic's api, error or topic).
            attributeObject[key] = long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out long whole) ? JsonValue.Create(whole)
                : double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double fraction) ? JsonValue.Create(fraction)
                : value is "true" or "false" ? JsonValue.Create(value == "true")
                : JsonValue.Create(value);
        }

        body["attributes"] = attributeObject;
        if (match.Length > 0)
        {
            var matchObject = new JsonObject();
            foreach (var pair in match)
            {
                if (Split(pair) is not var (key, value))
                {
                    Console.Error.WriteLine($"error: --match '{pair}': expected client_id=REGEX, source=ADDRESSES, pid=N or process=NAME");
                    return BindProxyCommand.ExitConfigInvalid;
                }

                matchObject[key] = key == "pid" && int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int pid) ? pid : value;
            }

            body["match"] = matchObject;
        }

        return await CallAsync(api, async http =>
        {
            using var content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
            using var response = await http.PostAsync(new Uri($"proxies/{route}/toxics", UriKind.Relative), content, cancellationToken).ConfigureAwait(false);
            var toxic = await CheckAsync(response, cancellationToken).ConfigureAwait(false);
            Console.Out.WriteLine($"{route}: toxic {toxic.GetProperty("name").GetString()} added");
            return BindProxyCommand.ExitOk;
        }).ConfigureAwait(false);
    }

    private static async Task<int> RemoveAsync(string api, string route, string toxic, CancellationToken cancellationToken)
    {
        return await CallAsync(api, async http =>
        {
            using var response = await http.DeleteAsync(new Uri($"proxies/{route}/toxics/{toxic}", UriKind.Relative), cancellationToken).ConfigureAwait(false);
            await CheckAsync(response, cancellationToken).ConfigureAwait(false);
            Console.Out.WriteLine($"{route}: toxic {toxic} removed");
            return BindProxyCommand.ExitOk;
        }).ConfigureAwait(false);
    }

    private static (string Key, string Value)? Split(string pair) =>
        pair.IndexOf('=', StringComparison.Ordinal) is > 0 and var at ? (pair[..at], pair[(at + 1)..]) : null;

    /// <summary>Runs one call; an unreachable API or an error answer is one line and exit code 1.</summary>
    private static async Task<int> CallAsync(string api, Func<HttpClient, Task<int>> call)
    {
        using var http = Client(api);
        try
        {
            return await call(http).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            Console.Error.WriteLine($"error: the fault API at {http.BaseAddress} cannot be reached ({e.Message}); is Faults:Listen set on the running proxy?");
            return BindProxyCommand.ExitConfigInvalid;
        }
        catch (FaultApiException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return BindProxyCommand.ExitConfigInvalid;
        }
        catch (TaskCanceledException)
        {
            Console.Error.WriteLine($"error: the fault API at {http.BaseAddress} did not answer within {http.Timeout.TotalSeconds} s");
            return BindProxyCommand.ExitConfigInvalid;
        }
    }

    private static async Task<JsonElement> CheckAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        JsonElement body = default;
        try
        {
            body = text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
        }
        catch (JsonException)
        {
        }

        if (!response.IsSuccessStatusCode)
        {
            var message = body.ValueKind == JsonValueKind.Object && body.TryGetProperty("error", out var error) ? error.GetString() : text;
            throw new FaultApiException($"{(int)response.StatusCode}: {message}");
        }

        return body;
    }

    private sealed class FaultApiException(string message) : Exception(message);
}
