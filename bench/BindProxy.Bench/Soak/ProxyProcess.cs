using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text.Json;
using BindProxy.Bench.Measurement;

namespace BindProxy.Bench.Soak;

/// <summary>
/// BindProxy as a child process (<c>dotnet BindProxy.dll --config FILE</c>) with the soak's two
/// routes, logging warnings and errors to a file. Read through /proc and its admin endpoint, and
/// stopped with SIGTERM like a service manager would.
/// </summary>
internal sealed partial class ProxyProcess : IDisposable
{
    private const int SigTerm = 15;
    private const int MaxConsoleLines = 10_000;

    private readonly Process _process;
    private readonly StreamWriter _console;
    private readonly Lock _consoleLock = new();
    private readonly HttpClient _admin;
    private int _consoleLines;
    private bool _consoleClosed;

    private ProxyProcess(Process process, StreamWriter console, IPEndPoint admin)
    {
        _process = process;
        _console = console;
        _admin = new HttpClient { BaseAddress = new Uri($"http://{admin}/"), Timeout = TimeSpan.FromSeconds(2) };
    }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>The proxy's configuration file: a Tcp route to the echo server and a Kafka route to the mock cluster.</summary>
    public static string Configuration(SoakSettings settings, string kafkaBootstrap, string logPath)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteStartObject("BindProxy");
            json.WriteString("DrainTimeout", SoakSettings.DrainTimeout.ToString("c", CultureInfo.InvariantCulture));
            json.WriteStartObject("Routes");
            WriteRoute(json, SoakSettings.TcpRoute, settings.TcpListen, settings.Echo.ToString(), SoakSettings.TcpSource, "Tcp");
            WriteRoute(json, SoakSettings.KafkaRoute, settings.KafkaListen, kafkaBootstrap, SoakSettings.KafkaSource, "Kafka");
            json.WriteEndObject();
            json.WriteEndObject();

            json.WriteStartObject("Admin");
            json.WriteString("Listen", settings.Admin.ToString());
            json.WriteEndObject();

            // Warnings and errors only, as in the side-by-side benchmark: a line per connection
            // would cost the churn, and fill a disk in an hour.
            json.WriteStartObject("Serilog");
            json.WriteStartObject("MinimumLevel");
            json.WriteString("Default", "Warning");
            json.WriteEndObject();
            json.WriteStartArray("WriteTo");
            json.WriteStartObject();
            json.WriteString("Name", "File");
            json.WriteStartObject("Args");
            json.WriteString("path", logPath);
            json.WriteString("outputTemplate", "{Timestamp:yyyy-MM-dd HH:mm:ss.fff} {Level:u3} {Message:lj}{NewLine}{Exception}");
            json.WriteEndObject();
            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteEndObject();
            json.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>Starts the proxy; its stdout and stderr go to <paramref name="consolePath"/>.</summary>
    public static ProxyProcess Start(SoakSettings settings, string configPath, string consolePath)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = System.IO.Path.GetDirectoryName(configPath)!,
        };
        info.ArgumentList.Add(settings.ProxyDll);
        info.ArgumentList.Add("--config");
        info.ArgumentList.Add(configPath);

        var console = new StreamWriter(consolePath) { AutoFlush = true };
        var process = new Process { StartInfo = info };
        try
        {
            var proxy = new ProxyProcess(process, console, settings.Admin);
            process.OutputDataReceived += (_, e) => proxy.Console(e.Data);
            process.ErrorDataReceived += (_, e) => proxy.Console(e.Data);
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            return proxy;
        }
        catch
        {
            process.Dispose();
            console.Dispose();
            throw;
        }
    }

    /// <summary>Waits until both routes accept and the admin endpoint answers; false if the proxy exits or the time runs out.</summary>
    public async Task<bool> WaitReadyAsync(SoakSettings settings, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < deadline && !cancellationToken.IsCancellationRequested)
        {
            if (_process.HasExited)
            {
                return false;
            }

            if (await AcceptsAsync(settings.TcpListen, cancellationToken)
                && await AcceptsAsync(settings.KafkaListen, cancellationToken)
                && await ActiveConnectionsAsync(cancellationToken) is not null)
            {
                return true;
            }

            await Task.Delay(200, cancellationToken);
        }

        return false;
    }

    /// <summary>RSS, CPU, open descriptors and threads of the proxy process, read from /proc.</summary>
    public ProxyStatus Status()
    {
        var tree = ProcessTree.Sample(Pid);
        var fds = -1;
        var threads = -1;
        try
        {
            fds = Directory.EnumerateFileSystemEntries($"/proc/{Pid}/fd").Count();
            foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
            {
                if (line.StartsWith("Threads:", StringComparison.Ordinal))
                {
                    threads = int.Parse(line.AsSpan("Threads:".Length).Trim(), CultureInfo.InvariantCulture);
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The process is gone: -1 marks what could not be read.
        }

        return new ProxyStatus(tree.RssKb, tree.CpuSeconds, fds, threads);
    }

    /// <summary>
    /// Proxied connections open now per route, from <c>GET /api/routes</c>; a Kafka route's broker
    /// listeners count with it. Null when the endpoint does not answer.
    /// </summary>
    public async Task<ActiveConnections?> ActiveConnectionsAsync(CancellationToken cancellationToken)
    {
        try
        {
            using var response = await _admin.GetAsync(new Uri("api/routes", UriKind.Relative), cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                return null;
            }

            using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
            int tcp = 0, kafka = 0;
            foreach (var route in document.RootElement.EnumerateArray())
            {
                var name = route.GetProperty("name").GetString();
                var parent = route.TryGetProperty("parent", out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;
                var active = route.GetProperty("activeConnections").GetInt32();
                if (name == SoakSettings.TcpRoute)
                {
                    tcp += active;
                }
                else if (name == SoakSettings.KafkaRoute || parent == SoakSettings.KafkaRoute)
                {
                    kafka += active;
                }
            }

            return new ActiveConnections(tcp, kafka);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException or InvalidOperationException or KeyNotFoundException)
        {
            return null;
        }
    }

    /// <summary>SIGTERM, then waits for the drain; kills it if it has not exited by then. Returns the exit code and how long it took.</summary>
    public async Task<(int? ExitCode, double Seconds, bool Killed)> StopAsync(TimeSpan timeout)
    {
        var started = Stopwatch.GetTimestamp();
        if (_process.HasExited)
        {
            return (_process.ExitCode, 0, false);
        }

        _ = Kill(Pid, SigTerm);
        using var wait = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(wait.Token);
            return (_process.ExitCode, Stopwatch.GetElapsedTime(started).TotalSeconds, false);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync(CancellationToken.None);
            return (null, Stopwatch.GetElapsedTime(started).TotalSeconds, true);
        }
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5_000);
            }
        }
        catch (InvalidOperationException)
        {
            // Never started.
        }

        _process.Dispose();
        _admin.Dispose();
        lock (_consoleLock)
        {
            _consoleClosed = true;
            _console.Dispose();
        }
    }

    private static void WriteRoute(Utf8JsonWriter json, string name, IPEndPoint listen, string upstream, string source, string protocol)
    {
        json.WriteStartObject(name);
        json.WriteString("Listen", listen.ToString());
        json.WriteString("Upstream", upstream);
        json.WriteString("Source", source);
        json.WriteString("Protocol", protocol);
        json.WriteEndObject();
    }

    private static async Task<bool> AcceptsAsync(IPEndPoint endpoint, CancellationToken cancellationToken)
    {
        try
        {
            using var socket = await Load.SocketIo.ConnectAsync(endpoint, TimeSpan.FromSeconds(1), cancellationToken);
            return true;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    private void Console(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_consoleLock)
        {
            // Output may still arrive while the process is torn down.
            if (!_consoleClosed && _consoleLines++ < MaxConsoleLines)
            {
                _console.WriteLine(line);
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}

/// <summary>The proxy process as /proc shows it; -1 where it could not be read.</summary>
internal readonly record struct ProxyStatus(long RssKb, double CpuSeconds, int Fds, int Threads);

/// <summary>Proxied connections open now on the Tcp route and on the Kafka route with its broker listeners.</summary>
internal readonly record struct ActiveConnections(int Tcp, int Kafka);
