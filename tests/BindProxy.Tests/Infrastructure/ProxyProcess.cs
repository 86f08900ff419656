using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;

namespace BindProxy.Tests.Infrastructure;

/// <summary>The real BindProxy executable as a child process, with its output collected.</summary>
public sealed class ProxyProcess : IAsyncDisposable
{
    private static readonly string ProxyDll = Path.Combine(AppContext.BaseDirectory, "BindProxy.dll");
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly Task _readers;

    // Started as a shell command leading a process group of its own: signals go to the whole group.
    private readonly bool _group;

    private ProxyProcess(Process process, bool group = false)
    {
        _process = process;
        _group = group;
        _readers = Task.WhenAll(Drain(process.StandardOutput), Drain(process.StandardError));
    }

    public IEnumerable<string> Lines => _lines;

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public static ProxyProcess Start(string workingDirectory, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory };
        info.ArgumentList.Add(ProxyDll);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        return new ProxyProcess(Process.Start(info)!);
    }

    /// <summary>
    /// Starts the proxy with its open-files limit set to <paramref name="nofile"/> (soft and hard)
    /// through <paramref name="prlimit"/>, which then runs it in its own place (same process id).
    /// </summary>
    public static ProxyProcess StartWithLimit(string prlimit, int nofile, string workingDirectory, params string[] args)
    {
        var info = new ProcessStartInfo(prlimit) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory };
        info.ArgumentList.Add($"--nofile={nofile}:{nofile}");
        info.ArgumentList.Add("dotnet");
        info.ArgumentList.Add(ProxyDll);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        return new ProxyProcess(Process.Start(info)!);
    }

    /// <summary>
    /// Runs <paramref name="command"/> as a user's terminal does: a shell leading a process group of
    /// its own (setsid), so that <see cref="Interrupt"/> reaches everything it started, as Ctrl-C
    /// does (e.g. <c>dotnet run</c> and the proxy it runs).
    /// </summary>
    public static ProxyProcess StartShell(string command, string workingDirectory, IReadOnlyDictionary<string, string> environment)
    {
        var info = new ProcessStartInfo("setsid") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory };
        foreach (var arg in new[] { "bash", "-c", command })
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var (name, value) in environment)
        {
            info.Environment[name] = value;
        }

        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";
        return new ProxyProcess(Process.Start(info)!, group: true);
    }

    private async Task Drain(StreamReader reader)
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            _lines.Enqueue(line);
        }
    }

    /// <summary>Waits for a line containing <paramref name="fragment"/>; fails at once if the output ends first.</summary>
    public async Task<string> WaitForLineAsync(string fragment, TimeSpan timeout)
    {
        string? line = null;
        await Poll.UntilAsync(
            () =>
            {
                // Looked at before the lines: once the readers are done, every line is in the queue.
                bool ended = _readers.IsCompleted;
                line = _lines.FirstOrDefault(l => l.Contains(fragment, StringComparison.Ordinal));
                return line is not null || ended;
            },
            () => $"a line with '{fragment}'; output so far:\n{string.Join("\n", _lines)}",
            timeout);
        if (line is null)
        {
            Assert.Fail($"the output ended (the proxy exited) before a line with '{fragment}'; output:\n{string.Join("\n", _lines)}");
        }

        return line;
    }

    /// <summary>The endpoint route <paramref name="route"/> listens on, read from the log.</summary>
    public async Task<IPEndPoint> ListeningAsync(string route, TimeSpan timeout)
    {
        var marker = $"Route {route} listening on ";
        var line = await WaitForLineAsync(marker, timeout);
        return IPEndPoint.Parse(line[(line.IndexOf(marker, StringComparison.Ordinal) + marker.Length)..].Trim());
    }

    /// <summary>The first endpoint any route listens on, read from the log.</summary>
    public async Task<IPEndPoint> ListeningAsyncAny(TimeSpan timeout)
    {
        const string marker = " listening on ";
        var line = await WaitForLineAsync(marker, timeout);
        return IPEndPoint.Parse(line[(line.IndexOf(marker, StringComparison.Ordinal) + marker.Length)..].Trim());
    }

    /// <summary>Sends SIGTERM, as a service manager does.</summary>
    public void Terminate() => Signal("-TERM");

    /// <summary>Sends SIGINT, as Ctrl-C in a terminal does.</summary>
    public void Interrupt() => Signal("-INT");

    private void Signal(string signal)
    {
        string pid = _process.Id.ToString(CultureInfo.InvariantCulture);
        using var kill = Process.Start("kill", _group ? [signal, "--", "-" + pid] : [signal, pid]);
        kill.WaitForExit();
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        await _process.WaitForExitAsync().WaitAsync(timeout);
        await _readers.WaitAsync(timeout);
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            if (_group)
            {
                Signal("-KILL");
            }
            else
            {
                _process.Kill(entireProcessTree: true);
            }

            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}
