using System.Collections.Concurrent;
using System.Net;
using System.Net.WebSockets;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace BindProxy.Tests.Http;

/// <summary>What the test server saw of one request.</summary>
public sealed record SeenRequest(string RemoteAddress, int RemotePort, string Method, string Path, string Protocol, string? XForwardedFor, string? Host)
{
    public override string ToString() => $"{RemoteAddress}:{RemotePort} {Method} {Path} {Protocol} X-Forwarded-For={XForwardedFor ?? "(none)"} Host={Host}";
}

/// <summary>
/// A real Kestrel HTTP server on 127.0.0.1:0 (HTTP/1.1 and cleartext HTTP/2) that answers:
/// <list type="bullet">
/// <item><c>/whoami</c>: the request as seen here (remote address, X-Forwarded-For, Host), as JSON;</item>
/// <item><c>POST /sha256</c>: the length and SHA-256 of the body, read as a stream;</item>
/// <item><c>/bytes?size=N</c>: N bytes of <see cref="Payload"/>, written as a stream;</item>
/// <item><c>/ws</c>: a WebSocket that echoes every message;</item>
/// <item><c>/silent</c>: no answer until the client goes away;</item>
/// <item><c>/gather?n=N</c>: answers once N such requests are in flight together;</item>
/// <item><c>/close</c>: answers with <c>Connection: close</c> and closes the connection.</item>
/// </list>
/// </summary>
public sealed class HttpTestServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<int, TaskCompletionSource> _gatherings = new();
    private int _gathered;

    private HttpTestServer()
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().UseSockets();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = null;
            kestrel.Listen(IPAddress.Loopback, 0, listen => listen.Protocols = HttpProtocols.Http1AndHttp2);
        });
        builder.Logging.ClearProviders();
        _app = builder.Build();
        _app.UseWebSockets();
        _app.Run(HandleAsync);
    }

    public ConcurrentQueue<SeenRequest> Requests { get; } = new();

    public IPEndPoint Endpoint { get; private set; } = null!;

    public string Address => Endpoint.ToString();

    public static async Task<HttpTestServer> StartAsync()
    {
        var server = new HttpTestServer();
        await server._app.StartAsync().WaitAsync(TimeSpan.FromSeconds(10));
        var address = server._app.Urls.Single();
        server.Endpoint = IPEndPoint.Parse(new Uri(address).Authority);
        return server;
    }

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var seen = new SeenRequest(context.Connection.RemoteIpAddress!.ToString(), context.Connection.RemotePort, request.Method, request.Path, request.Protocol,
            request.Headers["X-Forwarded-For"].FirstOrDefault(), request.Headers.Host.FirstOrDefault());
        Requests.Enqueue(seen);
        var aborted = context.RequestAborted;

        switch (request.Path.Value)
        {
            case "/whoami":
                await context.Response.WriteAsJsonAsync(seen, aborted);
                break;

            case "/sha256":
            {
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                var buffer = new byte[64 * 1024];
                long length = 0;
                int n;
                while ((n = await request.Body.ReadAsync(buffer, aborted)) > 0)
                {
                    hash.AppendData(buffer, 0, n);
                    length += n;
                }

                await context.Response.WriteAsJsonAsync(new BodyDigest(length, Convert.ToHexString(hash.GetHashAndReset())), aborted);
                break;
            }

            case "/bytes":
            {
                long size = long.Parse(request.Query["size"]!);
                context.Response.ContentType = "application/octet-stream";
                foreach (var chunk in Payload.Chunks(size))
                {
                    await context.Response.Body.WriteAsync(chunk, aborted);
                }

                break;
            }

            case "/ws" when context.WebSockets.IsWebSocketRequest:
            {
                using var socket = await context.WebSockets.AcceptWebSocketAsync();
                var buffer = new byte[4 * 1024 * 1024];
                while (true)
                {
                    int filled = 0;
                    ValueWebSocketReceiveResult received;
                    do
                    {
                        received = await socket.ReceiveAsync(buffer.AsMemory(filled), aborted);
                        filled += received.Count;
                    }
                    while (!received.EndOfMessage && filled < buffer.Length);

                    if (received.MessageType == WebSocketMessageType.Close)
                    {
                        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", aborted);
                        return;
                    }

                    await socket.SendAsync(buffer.AsMemory(0, filled), received.MessageType, endOfMessage: true, aborted);
                }
            }

            case "/silent":
                // Never answers: the proxy's RequestTimeout is what is tested. Ends when the proxy gives
                // the request up (or the server stops), which aborts it.
                await Task.Delay(Timeout.Infinite, aborted).ContinueWith(_ => { }, TaskScheduler.Default);
                break;

            case "/gather":
            {
                int n = int.Parse(request.Query["n"]!);
                var all = _gatherings.GetOrAdd(n, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
                if (Interlocked.Increment(ref _gathered) >= n)
                {
                    all.TrySetResult();
                }

                await all.Task.WaitAsync(TimeSpan.FromSeconds(20), aborted);
                await context.Response.WriteAsJsonAsync(seen, aborted);
                break;
            }

            case "/close":
                context.Response.Headers.Connection = "close";
                await context.Response.WriteAsync("bye", aborted);
                break;

            default:
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                break;
        }
    }

    public async ValueTask DisposeAsync()
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await _app.StopAsync(stop.Token);
        }
        catch (OperationCanceledException)
        {
        }

        await _app.DisposeAsync();
    }
}

public sealed record BodyDigest(long Length, string Sha256);

/// <summary>A deterministic pseudo-random byte stream that both ends can produce and hash.</summary>
public static class Payload
{
    public const int ChunkSize = 64 * 1024;

    public static IEnumerable<ReadOnlyMemory<byte>> Chunks(long size, int seed = 8)
    {
        var random = new Random(seed);
        var chunk = new byte[ChunkSize];
        for (long left = size; left > 0; left -= ChunkSize)
        {
            random.NextBytes(chunk);
            yield return chunk.AsMemory(0, (int)Math.Min(ChunkSize, left));
        }
    }

    public static string Sha256(long size, int seed = 8)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var chunk in Chunks(size, seed))
        {
            hash.AppendData(chunk.Span);
        }

        return Convert.ToHexString(hash.GetHashAndReset());
    }

    /// <summary>A request body of unknown length (sent chunked / as HTTP/2 DATA frames), produced as it is sent.</summary>
    public sealed class Content(long size, int seed = 8) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            foreach (var chunk in Chunks(size, seed))
            {
                await stream.WriteAsync(chunk, cancellationToken);
            }
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
            SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
