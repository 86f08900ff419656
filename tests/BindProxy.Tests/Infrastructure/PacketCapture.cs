using System.Diagnostics;

namespace BindProxy.Tests.Infrastructure;

/// <summary>A tshark capture on the loopback interface, for tests that check what goes over the wire.</summary>
public sealed class PacketCapture : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _tshark;

    private PacketCapture(Process process, string tshark, string file)
    {
        _process = process;
        _tshark = tshark;
        File = file;
    }

    public string File { get; }

    /// <summary>
    /// Starts capturing on <c>lo</c> with a capture filter. Returns once a packet of
    /// <paramref name="probe"/> (traffic that matches the filter) has been seen, so nothing that
    /// follows is missed while the capture is still starting.
    /// </summary>
    public static async Task<PacketCapture> StartAsync(string captureFilter, Func<Task> probe)
    {
        var tshark = ExternalTool.Require("tshark");
        ExternalTool.RequireRoot("capturing on the loopback interface");
        var file = Path.Combine(Path.GetTempPath(), $"bindproxy-{Guid.NewGuid():n}.pcapng");
        var info = new ProcessStartInfo(tshark) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in new[] { "-i", "lo", "-f", captureFilter, "-w", file, "-P", "-l" })
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
        var firstPacket = process.StandardOutput.ReadLineAsync(cts.Token).AsTask();
        for (int i = 0; i < 40 && !firstPacket.IsCompleted; i++)
        {
            await probe();
            await Task.WhenAny(firstPacket, Task.Delay(250, cts.Token));
        }

        if (await firstPacket is null)
        {
            throw new InvalidOperationException("tshark captured nothing of the probe traffic");
        }

        _ = process.StandardOutput.ReadToEndAsync();
        return new PacketCapture(process, tshark, file);
    }

    /// <summary>Stops the capture (SIGINT, so the file is complete) and waits for tshark to exit.</summary>
    public async Task StopAsync()
    {
        if (_process.HasExited)
        {
            return;
        }

        await Task.Delay(300); // let the last packets reach the ring buffer
        using (var kill = Process.Start("kill", ["-INT", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
    }

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
