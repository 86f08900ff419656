using System.Net;
using System.Net.Sockets;

namespace BindProxy.Tests.Infrastructure;

public static class SocketExtensions
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    public static async Task<Socket> ConnectAsync(IPEndPoint endpoint)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(endpoint).WaitAsync(Timeout);
        return socket;
    }

    /// <summary>Reads until the peer's FIN; returns everything read.</summary>
    public static async Task<byte[]> ReadToEndAsync(this Socket socket, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? Timeout);
        var all = new MemoryStream();
        var buffer = new byte[64 * 1024];
        while (true)
        {
            int n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            if (n == 0)
            {
                return all.ToArray();
            }

            all.Write(buffer, 0, n);
        }
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes.</summary>
    public static async Task<byte[]> ReadExactlyAsync(this Socket socket, int count, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? Timeout);
        var buffer = new byte[count];
        int read = 0;
        while (read < count)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, cts.Token);
            if (n == 0)
            {
                throw new EndOfStreamException($"FIN after {read} of {count} bytes");
            }

            read += n;
        }

        return buffer;
    }

    /// <summary>Waits until the peer closes; returns how: 0 bytes (FIN) or the socket error (reset).</summary>
    public static async Task<SocketError> WaitForCloseAsync(this Socket socket, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var buffer = new byte[4096];
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token) > 0)
            {
            }

            return SocketError.Success;
        }
        catch (SocketException e)
        {
            return e.SocketErrorCode;
        }
    }

    /// <summary>
    /// Connects and waits for the proxy to close the connection; returns how it was closed (FIN:
    /// Success, or ConnectionReset). The proxy's reset may even beat the connect's completion.
    /// </summary>
    public static async Task<SocketError> ConnectAndWaitForCloseAsync(IPEndPoint endpoint, TimeSpan timeout)
    {
        Socket socket;
        try
        {
            socket = await ConnectAsync(endpoint);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            return SocketError.ConnectionReset;
        }

        using (socket)
        {
            return await socket.WaitForCloseAsync(timeout);
        }
    }

    /// <summary>Closes with RST instead of FIN.</summary>
    /// <summary>Sends <paramref name="payload"/> to an echo server and checks it comes back whole.</summary>
    /// <summary>
    /// The median of <paramref name="rounds"/> one-byte round trips through an echo, in ms: what a
    /// latency toxic adds shows in it, a stray slow round does not.
    /// </summary>
    public static async Task<double> MedianRoundTripMsAsync(this Socket socket, int rounds)
    {
        var times = new List<double>();
        var one = new byte[1];
        for (int i = 0; i < rounds; i++)
        {
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            await socket.SendAsync(one);
            await socket.ReadExactlyAsync(1);
            times.Add(System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }

        times.Sort();
        return times[times.Count / 2];
    }

    public static async Task EchoAsync(this Socket socket, byte[] payload)
    {
        var echo = socket.ReadExactlyAsync(payload.Length);
        await socket.SendAsync(payload);
        Assert.Equal(payload, await echo.WaitAsync(Timeout));
    }

    public static void Reset(this Socket socket)
    {
        socket.LingerState = new LingerOption(true, 0);
        socket.Close();
    }
}
