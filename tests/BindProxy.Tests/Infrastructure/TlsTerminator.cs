using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace BindProxy.Tests.Infrastructure;

/// <summary>
/// A TLS server in front of a plaintext one, as a real cluster's TLS listener is: socat's
/// OPENSSL-LISTEN on a port of its own, forwarding each connection's plaintext to
/// <c>backend</c>; with a client CA it requires a client certificate signed by it.
/// </summary>
public sealed class TlsTerminator : IAsyncDisposable
{
    private readonly Process _process;

    private TlsTerminator(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    public string Address => $"127.0.0.1:{Port}";

    /// <param name="certificate">The certificate and its key in one PEM file.</param>
    /// <param name="clientCa">When set, a client certificate signed by this CA is required.</param>
    public static async Task<TlsTerminator> StartAsync(string certificate, IPEndPoint backend, string? clientCa = null)
    {
        var socat = ExternalTool.Require("socat");
        int port = FreePort();
        string verify = clientCa is null ? "verify=0" : $"verify=1,cafile={clientCa}";
        var info = new ProcessStartInfo(socat)
        {
            UseShellExecute = false,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        foreach (var arg in new[]
        {
            "-d", $"OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={certificate},{verify}",
            $"TCP:{backend.Address}:{backend.Port.ToString(CultureInfo.InvariantCulture)}",
        })
        {
            info.ArgumentList.Add(arg);
        }

        var process = Process.Start(info)!;
        process.ErrorDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        var terminator = new TlsTerminator(process, port);
        await Poll.UntilAsync(() => Listening(port) || process.HasExited, $"socat listening on 127.0.0.1:{port}");
        Assert.False(process.HasExited, $"socat exited with {(process.HasExited ? process.ExitCode : 0)}");
        return terminator;
    }

    /// <summary>A port free now on 127.0.0.1 (a program that cannot listen on port 0 and tell which port it got needs one).</summary>
    public static int FreePort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    /// <summary>True when something listens on the port (from the kernel's table: connecting would start a session).</summary>
    private static bool Listening(int port)
    {
        string hex = port.ToString("X4", CultureInfo.InvariantCulture);
        return File.ReadLines("/proc/net/tcp").Skip(1).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Any(f => f.Length > 3 && f[1].EndsWith($":{hex}", StringComparison.Ordinal) && f[3] == "0A");
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
    }
}
