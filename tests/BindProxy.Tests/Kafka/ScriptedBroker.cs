using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace BindProxy.Tests.Kafka;

/// <summary>
/// A broker address in front of a real one (librdkafka's mock cluster): a connection whose first
/// request names a client.id starting with <see cref="ScriptedPrefix"/> is answered by the test's
/// script, frame by frame, and every frame it receives is kept as it arrived; any other connection
/// is relayed byte for byte to the real broker.
/// </summary>
internal sealed class ScriptedBroker : IAsyncDisposable
{
    public const string ScriptedPrefix = "scripted";

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly IPEndPoint _broker;
    private readonly Func<int, byte[]?> _answer;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentBag<Socket> _sockets = [];
    private readonly ConcurrentBag<Task> _connections = [];
    private readonly Task _accepting;

    private readonly Func<int, (int Bytes, Task<bool> Then)?>? _split;

    /// <param name="answer">The response body (after the correlation id) for a correlation id; null sends nothing.</param>
    /// <param name="split">
    /// For a correlation id whose response goes in two parts: the bytes sent first, and a task whose
    /// true sends the rest and false closes the connection instead.
    /// </param>
    public ScriptedBroker(string broker, Func<int, byte[]?> answer, Func<int, (int Bytes, Task<bool> Then)?>? split = null)
    {
        _broker = IPEndPoint.Parse(broker);
        _answer = answer;
        _split = split;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public IPEndPoint Endpoint => (IPEndPoint)_listener.LocalEndpoint;

    /// <summary>A Kafka route named <paramref name="name"/> to this broker from 127.0.0.2 that decodes every body, for the conversation to show.</summary>
    public BindProxy.Configuration.RouteConfig Route(string name) => new()
    {
        Name = name,
        Listen = "127.0.0.1:0",
        Upstream = Endpoint.ToString(),
        Source = "127.0.0.2",
        Protocol = "Kafka",
        DecodeBodies = "always",
    };

    /// <summary>Every frame the scripted connections received (size prefix included), in order.</summary>
    public ConcurrentQueue<byte[]> Received { get; } = new();

    /// <summary>Every frame the script sent back (size prefix included), in order.</summary>
    public ConcurrentQueue<byte[]> Sent { get; } = new();

    /// <summary>Reads one size-prefixed frame whole (prefix included); null at the end of the stream.</summary>
    public static async Task<byte[]?> ReadFrameAsync(Stream stream, CancellationToken cancellationToken)
    {
        var prefix = new byte[4];
        if (await stream.ReadAtLeastAsync(prefix, 4, throwOnEndOfStream: false, cancellationToken) < 4)
        {
            return null;
        }

        int size = BinaryPrimitives.ReadInt32BigEndian(prefix);
        if (size is < 0 or > 16 * 1024 * 1024)
        {
            return null;
        }

        var frame = new byte[4 + size];
        prefix.CopyTo(frame, 0);
        return await stream.ReadAtLeastAsync(frame.AsMemory(4), size, throwOnEndOfStream: false, cancellationToken) < size ? null : frame;
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var socket = await _listener.AcceptSocketAsync(_stop.Token);
                _sockets.Add(socket);
                _connections.Add(ServeAsync(socket));
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        try
        {
            await using var client = new NetworkStream(socket, ownsSocket: false);
            var first = await ReadFrameAsync(client, _stop.Token);
            if (first is null)
            {
                return;
            }

            if (ClientId(first)?.StartsWith(ScriptedPrefix, StringComparison.Ordinal) == true)
            {
                for (var frame = first; frame is not null; frame = await ReadFrameAsync(client, _stop.Token))
                {
                    Received.Enqueue(frame);
                    int correlationId = BinaryPrimitives.ReadInt32BigEndian(frame.AsSpan(8));
                    if (_answer(correlationId) is { } body)
                    {
                        var response = new byte[8 + body.Length];
                        BinaryPrimitives.WriteInt32BigEndian(response, 4 + body.Length);
                        BinaryPrimitives.WriteInt32BigEndian(response.AsSpan(4), correlationId);
                        body.CopyTo(response, 8);
                        Sent.Enqueue(response);
                        if (_split?.Invoke(correlationId) is { } split)
                        {
                            await client.WriteAsync(response.AsMemory(0, split.Bytes), _stop.Token);
                            await client.FlushAsync(_stop.Token);
                            if (!await split.Then.WaitAsync(_stop.Token))
                            {
                                return;
                            }

                            await client.WriteAsync(response.AsMemory(split.Bytes), _stop.Token);
                            continue;
                        }

                        await client.WriteAsync(response, _stop.Token);
                    }
                }

                return;
            }

            using var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            _sockets.Add(upstream);
            await upstream.ConnectAsync(_broker, _stop.Token);
            await using var broker = new NetworkStream(upstream, ownsSocket: false);
            await broker.WriteAsync(first, _stop.Token);
            var up = CopyAsync(client, broker, upstream);
            var down = CopyAsync(broker, client, socket);
            await Task.WhenAll(up, down);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
        {
        }
        finally
        {
            socket.Dispose();
        }
    }

    /// <summary>Copies until the end of <paramref name="from"/>, then passes the FIN on.</summary>
    private async Task CopyAsync(Stream from, Stream to, Socket toSocket)
    {
        try
        {
            await from.CopyToAsync(to, _stop.Token);
            toSocket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
        {
            toSocket.Dispose();
        }
    }

    /// <summary>The client.id of a request frame (header v1 and v2 both carry it as an int16-length string).</summary>
    private static string? ClientId(byte[] frame)
    {
        if (frame.Length < 14)
        {
            return null;
        }

        short length = BinaryPrimitives.ReadInt16BigEndian(frame.AsSpan(12));
        return length < 0 || 14 + length > frame.Length ? null : Encoding.UTF8.GetString(frame, 14, length);
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        foreach (var socket in _sockets)
        {
            socket.Dispose();
        }

        await _accepting.WaitAsync(TimeSpan.FromSeconds(10));
        await Task.WhenAll(_connections).WaitAsync(TimeSpan.FromSeconds(10));
        _stop.Dispose();
    }
}
