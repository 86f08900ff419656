using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace BindProxy.Tests.Kafka;

/// <summary>A request and the response that answered it, as raw frames (size prefix included).</summary>
internal sealed record CapturedExchange(short ApiKey, short ApiVersion, int CorrelationId, byte[] Request, byte[] Response);

/// <summary>
/// A plain loopback TCP relay, one listener per upstream broker, that forwards bytes untouched and
/// records every frame in both directions. It deliberately uses none of the product code, so what it
/// records is what a real peer put on the wire.
/// </summary>
internal sealed class CaptureRelay : IAsyncDisposable
{
    private readonly List<TcpListener> _listeners = [];
    private readonly List<Task> _tasks = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<CapturedExchange> _exchanges = new();

    public CaptureRelay(IReadOnlyList<string> upstreams)
    {
        foreach (var upstream in upstreams)
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            _listeners.Add(listener);
            var target = IPEndPoint.Parse(upstream);
            _tasks.Add(AcceptLoopAsync(listener, target, _stop.Token));
        }
    }

    /// <summary>Listening ports, in the order of the upstreams given.</summary>
    public IReadOnlyList<int> Ports => _listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToList();

    public IReadOnlyList<CapturedExchange> Exchanges => _exchanges.ToArray();

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        foreach (var listener in _listeners)
        {
            listener.Stop();
        }

        await Task.WhenAll(_tasks).WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
    }

    private async Task AcceptLoopAsync(TcpListener listener, IPEndPoint target, CancellationToken cancellationToken)
    {
        var connections = new List<Task>();
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var client = await listener.AcceptTcpClientAsync(cancellationToken);
                connections.Add(RelayAsync(client, target, cancellationToken));
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }

        await Task.WhenAll(connections).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private async Task RelayAsync(TcpClient client, IPEndPoint target, CancellationToken cancellationToken)
    {
        using var clientSide = client;
        using var upstream = new TcpClient();
        using var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        connectTimeout.CancelAfter(TimeSpan.FromSeconds(5));
        try
        {
            await upstream.ConnectAsync(target, connectTimeout.Token);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            return;
        }

        // Requests by correlation id, so each response can be paired with what it answers.
        var pending = new ConcurrentDictionary<int, byte[]>();
        using var done = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var toUpstream = PumpAsync(clientSide.GetStream(), upstream.GetStream(), frame => OnRequest(frame, pending), done.Token);
        var toClient = PumpAsync(upstream.GetStream(), clientSide.GetStream(), frame => OnResponse(frame, pending), done.Token);
        await Task.WhenAny(toUpstream, toClient);
        await done.CancelAsync();
        await Task.WhenAll(toUpstream, toClient).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private static void OnRequest(byte[] frame, ConcurrentDictionary<int, byte[]> pending)
    {
        if (frame.Length >= 12)
        {
            pending[BinaryPrimitives.ReadInt32BigEndian(frame.AsSpan(8))] = frame;
        }
    }

    private void OnResponse(byte[] frame, ConcurrentDictionary<int, byte[]> pending)
    {
        if (frame.Length < 8)
        {
            return;
        }

        var correlationId = BinaryPrimitives.ReadInt32BigEndian(frame.AsSpan(4));
        if (pending.TryRemove(correlationId, out var request))
        {
            var apiKey = BinaryPrimitives.ReadInt16BigEndian(request.AsSpan(4));
            var apiVersion = BinaryPrimitives.ReadInt16BigEndian(request.AsSpan(6));
            _exchanges.Enqueue(new CapturedExchange(apiKey, apiVersion, correlationId, request, frame));
        }
    }

    /// <summary>Copies bytes as they come and, on the side, cuts them into frames for the recorder.</summary>
    private static async Task PumpAsync(NetworkStream from, NetworkStream to, Action<byte[]> onFrame, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        var pending = new MemoryStream();
        try
        {
            while (true)
            {
                var read = await from.ReadAsync(buffer, cancellationToken);
                if (read == 0)
                {
                    return;
                }

                // Record before forwarding, so a response is never seen before its request.
                pending.Write(buffer, 0, read);
                EmitFrames(pending, onFrame);
                await to.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
    }

    private static void EmitFrames(MemoryStream pending, Action<byte[]> onFrame)
    {
        var data = pending.GetBuffer().AsSpan(0, (int)pending.Length);
        var offset = 0;
        while (data.Length - offset >= 4)
        {
            var size = BinaryPrimitives.ReadInt32BigEndian(data[offset..]);
            if (size < 0 || data.Length - offset - 4 < size)
            {
                break;
            }

            onFrame(data.Slice(offset, 4 + size).ToArray());
            offset += 4 + size;
        }

        var rest = data[offset..].ToArray();
        pending.SetLength(0);
        pending.Write(rest);
    }
}
