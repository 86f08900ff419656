using System.Net;
using System.Net.Sockets;

namespace BindProxy.Bench.Load;

/// <summary>Connect and exact-length exchange helpers; every call is bounded by a timeout.</summary>
internal static class SocketIo
{
    public static async Task<Socket> ConnectAsync(IPEndPoint target, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            cts.CancelAfter(timeout);
            await socket.ConnectAsync(target, cts.Token);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Sends <paramref name="message"/> and reads exactly as many bytes back into <paramref name="reply"/>.
    /// Returns null on success or a failure reason.
    /// </summary>
    public static async Task<string?> ExchangeAsync(
        Socket socket, ReadOnlyMemory<byte> message, Memory<byte> reply, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        try
        {
            await socket.SendAsync(message, SocketFlags.None, cts.Token);
            var read = 0;
            while (read < message.Length)
            {
                var n = await socket.ReceiveAsync(reply[read..message.Length], SocketFlags.None, cts.Token);
                if (n == 0)
                {
                    return "EndOfStream";
                }

                read += n;
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return "Timeout";
        }
        catch (SocketException e)
        {
            return $"{e.SocketErrorCode}(errno {e.NativeErrorCode})";
        }

        return message.Span.SequenceEqual(reply.Span[..message.Length]) ? null : "EchoMismatch";
    }

    /// <summary>Fills a message with a pattern that differs per connection, so crossed streams show.</summary>
    public static byte[] Pattern(int size, int seed)
    {
        var bytes = new byte[size];
        for (var i = 0; i < size; i++)
        {
            bytes[i] = (byte)((seed * 31) + (i * 7) + 1);
        }

        return bytes;
    }

    /// <summary>Sends every byte of <paramref name="data"/> on a blocking socket.</summary>
    public static void SendAll(Socket socket, ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            data = data[socket.Send(data)..];
        }
    }

    /// <summary>Fills <paramref name="buffer"/> from a blocking socket; false when the peer closed first.</summary>
    public static bool ReceiveExact(Socket socket, Span<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            var n = socket.Receive(buffer);
            if (n == 0)
            {
                return false;
            }

            buffer = buffer[n..];
        }

        return true;
    }
}
