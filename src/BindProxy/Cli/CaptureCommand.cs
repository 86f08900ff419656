using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Text.Json;

namespace BindProxy.Cli;

/// <summary>
/// <c>bindproxy capture</c>: asks a running proxy's admin endpoint for a pcapng capture of the
/// chosen connections (<c>GET /api/capture</c>) and writes it to a file or stdout; says on stderr
/// the Wireshark command that opens it with every listener and broker port decoded as Kafka.
/// </summary>
internal static class CaptureCommand
{
    /// <summary>The admin endpoint asked when neither <c>--admin</c> nor the file names one.</summary>
    public const string DefaultAdmin = "127.0.0.1:9901";

    public const int ExitFailed = 1;

    public static Command Create(Option<string?> admin)
    {
        var route = new Option<string?>("--route") { Description = "Only this route (a Kafka route with its broker listeners)." };
        var client = new Option<string?>("--client") { Description = "Only the Kafka client with this client.id." };
        var source = new Option<string?>("--source") { Description = "Only connections from this source address, or from this client address: 127.0.0.2, a range, a CIDR block or a list." };
        var pid = new Option<int?>("--pid") { Description = "Only this client process (intercepted connections, or assignment by process)." };
        var process = new Option<string?>("--process") { Description = "Only client processes whose command line contains this." };
        var connection = new Option<long?>("--connection") { Description = "Only this connection (an id from /api/connections)." };
        var legs = new Option<string?>("--legs") { Description = "client, upstream or both (default)." };
        var seconds = new Option<double?>("--seconds") { Description = "Stop after this many seconds (default: until Ctrl-C)." };
        var packets = new Option<long?>("--packets") { Description = "Stop after this many packets." };
        var bytes = new Option<long?>("--bytes") { Description = "Stop after this many bytes of pcapng." };
        var write = new Option<string?>("--write", "-w") { Description = "Where the pcapng goes: a file, or - for stdout (to pipe into wireshark -k -i -). Default: bindproxy-<time>.pcapng, or stdout when it is a pipe.", HelpName = "FILE|-" };

        var command = new Command("capture",
            "Capture the chosen connections of a running proxy as pcapng (from its admin endpoint), plaintext and without root; " +
            "prints the Wireshark command that opens it with Kafka decoded on every port.")
        {
            route, client, source, pid, process, connection, legs, seconds, packets, bytes, write,
        };
        command.SetAction((parse, cancellationToken) =>
        {
            var query = new List<(string, string?)>
            {
                ("route", parse.GetValue(route)),
                ("client", parse.GetValue(client)),
                ("source", parse.GetValue(source)),
                ("pid", parse.GetValue(pid)?.ToString(CultureInfo.InvariantCulture)),
                ("process", parse.GetValue(process)),
                ("connection", parse.GetValue(connection)?.ToString(CultureInfo.InvariantCulture)),
                ("legs", parse.GetValue(legs)),
                ("seconds", parse.GetValue(seconds)?.ToString(CultureInfo.InvariantCulture)),
                ("packets", parse.GetValue(packets)?.ToString(CultureInfo.InvariantCulture)),
                ("bytes", parse.GetValue(bytes)?.ToString(CultureInfo.InvariantCulture)),
            };
            return RunAsync(parse.GetValue(admin), parse.GetValue(route), query, parse.GetValue(write), cancellationToken);
        });
        return command;
    }

    private static async Task<int> RunAsync(string? admin, string? route, List<(string Key, string? Value)> query, string? write, CancellationToken cancellationToken)
    {
        var baseUri = AdminUri(admin ?? DefaultAdmin);
        if (baseUri is null)
        {
            await Console.Error.WriteLineAsync($"error: --admin: '{admin}' is not ADDR:PORT or an http:// URL").ConfigureAwait(false);
            return ExitFailed;
        }

        var toStdout = write == "-" || (write is null && Console.IsOutputRedirected);
        var file = toStdout ? null : write ?? $"bindproxy-{DateTime.Now:yyyyMMdd-HHmmss}.pcapng";
        var path = "api/capture?" + string.Join('&', query.Where(q => q.Value is not null).Select(q => $"{q.Key}={Uri.EscapeDataString(q.Value!)}"));

        using var http = new HttpClient { BaseAddress = baseUri, Timeout = Timeout.InfiniteTimeSpan };
        try
        {
            var ports = await KafkaPortsAsync(http, route, cancellationToken).ConfigureAwait(false);
            await Console.Error.WriteLineAsync($"Wireshark: {WiresharkCommand(file, ports)}").ConfigureAwait(false);

            using var response = await http.GetAsync(path, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
                await Console.Error.WriteLineAsync($"error: {baseUri}{path}: {(int)response.StatusCode} {text.Trim()}").ConfigureAwait(false);
                return ExitFailed;
            }

            await Console.Error.WriteLineAsync($"capturing {(file is null ? "to stdout" : $"to {file}")}; Ctrl-C stops").ConfigureAwait(false);
            var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            await using (body.ConfigureAwait(false))
            {
                // Readable while it grows (tail -f, or a test reading it back).
                var output = file is null ? Console.OpenStandardOutput() : new FileStream(file, FileMode.Create, FileAccess.Write, FileShare.Read);
                await using (output.ConfigureAwait(false))
                {
                    try
                    {
                        // Flushed as it comes, so a reader on the other end of a pipe sees packets live.
                        var buffer = new byte[64 * 1024];
                        int read;
                        while ((read = await body.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                        {
                            await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                            await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                        }
                    }
                    catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                    {
                        // Ctrl-C: what was written stays a readable capture.
                    }
                }
            }

            return BindProxyCommand.ExitOk;
        }
        catch (HttpRequestException e)
        {
            await Console.Error.WriteLineAsync($"error: cannot reach the admin endpoint at {baseUri}: {e.Message} (is the proxy running with Admin:Listen or --admin?)").ConfigureAwait(false);
            return ExitFailed;
        }
        catch (IOException e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
            return ExitFailed;
        }
    }

    internal static Uri? AdminUri(string admin)
    {
        if (admin.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || admin.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            return Uri.TryCreate(admin.EndsWith('/') ? admin : admin + "/", UriKind.Absolute, out var uri) ? uri : null;
        }

        return IPEndPoint.TryParse(admin, out var endpoint) && endpoint.Port != 0 ? new Uri($"http://{endpoint}/") : null;
    }

    /// <summary>
    /// The ports Kafka is spoken on, for decode-as: every listener of the Kafka routes (bootstrap
    /// and broker listeners) and every port they forward to; only <paramref name="route"/>'s family when given.
    /// </summary>
    internal static async Task<IReadOnlyList<int>> KafkaPortsAsync(HttpClient http, string? route, CancellationToken cancellationToken)
    {
        using var document = JsonDocument.Parse(await http.GetStringAsync("api/routes", cancellationToken).ConfigureAwait(false));
        var ports = new SortedSet<int>();
        foreach (var r in document.RootElement.EnumerateArray())
        {
            var name = r.GetProperty("name").GetString();
            var parent = r.TryGetProperty("parent", out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;
            if (r.GetProperty("protocol").GetString() != "Kafka" || (route is not null && route != name && route != parent))
            {
                continue;
            }

            foreach (var bound in r.GetProperty("bound").EnumerateArray())
            {
                if (IPEndPoint.TryParse(bound.GetString() ?? "", out var endpoint))
                {
                    ports.Add(endpoint.Port);
                }
            }

            var upstream = r.GetProperty("upstream").GetString() ?? "";
            int colon = upstream.LastIndexOf(':');
            if (colon > 0 && int.TryParse(upstream.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int port))
            {
                ports.Add(port);
            }
        }

        return [.. ports];
    }

    /// <summary><c>wireshark -k -i - -d tcp.port==19092,kafka …</c> for a pipe, <c>wireshark -r FILE …</c> for a file.</summary>
    internal static string WiresharkCommand(string? file, IReadOnlyList<int> kafkaPorts)
    {
        var decode = string.Concat(kafkaPorts.Select(p => $" -d tcp.port=={p},kafka"));
        return file is null ? $"… | wireshark -k -i -{decode}" : $"wireshark -r {file}{decode}";
    }
}
