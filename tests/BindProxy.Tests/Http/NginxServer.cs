using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using BindProxy.Tests.Infrastructure;

namespace BindProxy.Tests.Http;

/// <summary>
/// A real nginx (Debian package <c>nginx</c>) started by the test in the foreground, single
/// process, on a free 127.0.0.1 port, with its whole prefix (config, logs, temp files, document
/// root) in a temp directory; killed and removed on dispose. Serves:
/// <list type="bullet">
/// <item><c>/whoami</c>: <c>$remote_addr</c> and <c>$http_x_forwarded_for</c>, one per line;</item>
/// <item><c>/files/</c>: WebDAV PUT and GET of files of any size.</item>
/// </list>
/// The access log line of each request starts with <c>$remote_addr:$remote_port</c>.
/// </summary>
public sealed class NginxServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly DirectoryInfo _prefix;

    private NginxServer(Process process, DirectoryInfo prefix, int port)
    {
        _process = process;
        _prefix = prefix;
        Port = port;
    }

    public int Port { get; }

    public string Address => $"127.0.0.1:{Port}";

    public string AccessLog => Path.Combine(_prefix.FullName, "access.log");

    public static async Task<NginxServer> StartAsync()
    {
        // Debian puts nginx in /usr/sbin, which is not on every PATH.
        string nginx = ExternalTool.Find("nginx") ?? (File.Exists("/usr/sbin/nginx") ? "/usr/sbin/nginx" : ExternalTool.Require("nginx"));
        var errors = new List<string>();

        // A port found free may be taken before nginx binds it; try a few.
        for (int attempt = 0; attempt < 3; attempt++)
        {
            var prefix = Directory.CreateTempSubdirectory("bindproxy-nginx-");
            int port = HttpRouteTests.FreePort();
            Directory.CreateDirectory(Path.Combine(prefix.FullName, "www", "files"));
            string conf = Path.Combine(prefix.FullName, "nginx.conf");
            await File.WriteAllTextAsync(conf, Config(prefix.FullName, port));

            var info = new ProcessStartInfo(nginx) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var arg in new[] { "-p", prefix.FullName + "/", "-c", conf, "-e", Path.Combine(prefix.FullName, "error.log") })
            {
                info.ArgumentList.Add(arg);
            }

            var process = Process.Start(info)!;
            var server = new NginxServer(process, prefix, port);
            if (await server.WaitUntilListeningAsync(TimeSpan.FromSeconds(10)))
            {
                return server;
            }

            errors.Add(await server.ErrorLogAsync());
            await server.DisposeAsync();
        }

        throw new InvalidOperationException("nginx did not start:\n" + string.Join("\n---\n", errors));
    }

    private static string Config(string prefix, int port) => $$"""
        daemon off;
        master_process off;
        worker_processes 1;
        pid {{prefix}}/nginx.pid;
        error_log {{prefix}}/error.log info;
        events { worker_connections 64; }
        http {
            log_format bindproxy '$remote_addr:$remote_port "$request" $status $body_bytes_sent xff="$http_x_forwarded_for"';
            access_log {{prefix}}/access.log bindproxy;
            client_body_temp_path {{prefix}}/client_body;
            proxy_temp_path {{prefix}}/proxy;
            fastcgi_temp_path {{prefix}}/fastcgi;
            uwsgi_temp_path {{prefix}}/uwsgi;
            scgi_temp_path {{prefix}}/scgi;
            client_max_body_size 0;
            server {
                listen 127.0.0.1:{{port}};
                root {{prefix}}/www;
                location = /whoami {
                    default_type text/plain;
                    return 200 "$remote_addr\n$http_x_forwarded_for\n";
                }
                location /files/ {
                    dav_methods PUT DELETE;
                    create_full_put_path on;
                }
            }
        }
        """;

    /// <summary>Waits until nginx accepts a connection (true) or exits, e.g. because the port was taken (false).</summary>
    private async Task<bool> WaitUntilListeningAsync(TimeSpan timeout)
    {
        bool listening = false;
        await Poll.UntilAsync(
            async () =>
            {
                if (_process.HasExited)
                {
                    return true;
                }

                using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                try
                {
                    await probe.ConnectAsync(new IPEndPoint(IPAddress.Loopback, Port)).WaitAsync(TimeSpan.FromSeconds(1));
                    return listening = true;
                }
                catch (Exception e) when (e is SocketException or TimeoutException)
                {
                    return false;
                }
            },
            $"nginx to listen on {Address} or exit",
            timeout);
        return listening;
    }

    /// <summary>The access log lines so far (nginx writes each line when the request ends).</summary>
    public async Task<string[]> AccessLogLinesAsync() =>
        File.Exists(AccessLog) ? await File.ReadAllLinesAsync(AccessLog) : [];

    /// <summary>Waits until an access log line contains <paramref name="fragment"/>.</summary>
    public async Task<string> WaitForAccessAsync(string fragment, TimeSpan timeout)
    {
        var lines = await Poll.UntilAsync(AccessLogLinesAsync, all => all.Any(l => l.Contains(fragment, StringComparison.Ordinal)),
            $"an nginx access log line with '{fragment}'", timeout);
        return lines.First(l => l.Contains(fragment, StringComparison.Ordinal));
    }

    private async Task<string> ErrorLogAsync()
    {
        string file = Path.Combine(_prefix.FullName, "error.log");
        return File.Exists(file) ? await File.ReadAllTextAsync(file) : "(no error.log)";
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
        }

        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        _process.Dispose();
        try
        {
            _prefix.Delete(recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
