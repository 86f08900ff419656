using System.Diagnostics;

namespace BindProxy.Tests.Infrastructure;

/// <summary>A tshark capture on the loopback interface, for tests that check what goes over the wire.</summary>
/// <remarks>
/// tshark prints the capture time of every packet it writes, so the capture can tell when traffic
/// sent after a given moment has reached the file: that is how it knows it has started, and that
/// everything before a stop is in.
/// </remarks>
public sealed class PacketCapture : IAsyncDisposable
{
    /// <summary>How long a probe gets to show up before it is sent again (the capture may not be armed yet).</summary>
    private static readonly TimeSpan ProbeAgainAfter = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// The kernel buffer (MiB) for the capture: dumpcap's default of 2 MiB overflows while other
    /// tests push bulk traffic over lo, and what overflows is lost to the reference.
    /// </summary>
    private const string BufferMiB = "64";

    private readonly Process _process;
    private readonly string _tshark;
    private readonly Func<Task> _probe;
    private long _lastPacketTicks;

    private PacketCapture(Process process, string tshark, string file, Func<Task> probe)
    {
        _process = process;
        _tshark = tshark;
        _probe = probe;
        File = file;
    }

    public string File { get; }

    /// <summary>
    /// Starts capturing on <c>lo</c> with a capture filter. Returns once a packet of
    /// <paramref name="probe"/> (traffic that matches the filter) has been seen, so nothing that
    /// follows is missed while the capture is still starting. The probe is sent again at the stop.
    /// </summary>
    public static async Task<PacketCapture> StartAsync(string captureFilter, Func<Task> probe)
    {
        var tshark = ExternalTool.Require("tshark");
        ExternalTool.RequireRoot("capturing on the loopback interface");
        var file = Path.Combine(Path.GetTempPath(), $"bindproxy-{Guid.NewGuid():n}.pcapng");
        var info = new ProcessStartInfo(tshark) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in new[] { "-i", "lo", "-f", captureFilter, "-B", BufferMiB, "-w", file, "-P", "-l", "-T", "fields", "-e", "frame.time_epoch" })
        {
            info.ArgumentList.Add(arg);
        }

        var process = Process.Start(info)!;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (true)
        {
            var line = await process.StandardError.ReadLineAsync(cts.Token);
            if (line is null)
            {
                throw new InvalidOperationException($"tshark exited ({process.ExitCode}) before capturing");
            }

            if (line.Contains("Capturing on", StringComparison.Ordinal))
            {
                break;
            }
        }

        _ = process.StandardError.ReadToEndAsync(); // keep draining so tshark never blocks on stderr
        var capture = new PacketCapture(process, tshark, file, probe);
        _ = capture.FollowAsync(process.StandardOutput);
        await capture.ProbeUntilCapturedAsync("tshark to capture the probe traffic");
        return capture;
    }

    /// <summary>Records the capture time of each packet tshark reports (one epoch time a line).</summary>
    private async Task FollowAsync(StreamReader output)
    {
        while (await output.ReadLineAsync() is { } line)
        {
            if (double.TryParse(line, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var seconds))
            {
                Interlocked.Exchange(ref _lastPacketTicks, DateTime.UnixEpoch.AddSeconds(seconds).Ticks);
            }
        }
    }

    /// <summary>
    /// Sends the probe until tshark reports a packet captured after this call began. Packets reach
    /// tshark in order, so everything sent before then is in the file too.
    /// </summary>
    private async Task ProbeUntilCapturedAsync(string what)
    {
        long mark = DateTime.UtcNow.Ticks;
        Stopwatch? sinceProbe = null;
        await Poll.UntilAsync(
            async () =>
            {
                if (Interlocked.Read(ref _lastPacketTicks) >= mark)
                {
                    return true;
                }

                if (sinceProbe is null || sinceProbe.Elapsed >= ProbeAgainAfter)
                {
                    await _probe();
                    sinceProbe = Stopwatch.StartNew();
                }

                return Interlocked.Read(ref _lastPacketTicks) >= mark;
            },
            what,
            TimeSpan.FromSeconds(20));
    }

    /// <summary>
    /// Sends the probe once more and waits until tshark has it, so every packet before it is in the
    /// file; then stops the capture (SIGINT, so the file is complete) and waits for tshark to exit.
    /// </summary>
    public async Task StopAsync()
    {
        if (_process.HasExited)
        {
            return;
        }

        await ProbeUntilCapturedAsync("tshark to capture the closing probe");
        using (var kill = Process.Start("kill", ["-INT", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
    }

    /// <summary>Reads the capture back through tshark with <paramref name="args"/> (decode-as rules, an output format): its output.</summary>
    public Task<string> ReadRawAsync(params string[] args) => ExternalTool.RunAsync(_tshark, ["-r", File, .. args]);

    /// <summary>Reads the capture back: one row per packet, the given fields tab-separated.</summary>
    public async Task<IReadOnlyList<string[]>> ReadAsync(string? displayFilter, params string[] fields)
    {
        var args = new List<string> { "-r", File, "-T", "fields" };
        if (displayFilter is not null)
        {
            args.AddRange(["-Y", displayFilter]);
        }

        foreach (var field in fields)
        {
            args.AddRange(["-e", field]);
        }

        var output = await ExternalTool.RunAsync(_tshark, [.. args]);
        return [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t'))];
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
            }
        }
        finally
        {
            _process.Dispose();
            System.IO.File.Delete(File);
        }

        await Task.CompletedTask;
    }
}
