using System.Net.Sockets;

namespace BindProxy.Tests.Infrastructure;

/// <summary>
/// A payload sent through an echo in 64 KiB writes while its echo is read back, both at once, so a
/// test can change something half way (<see cref="Echoed"/>) and then compare what came back.
/// </summary>
public sealed class EchoTransfer
{
    private readonly Task _sending;
    private readonly Task<byte[]> _receiving;
    private long _echoed;

    private EchoTransfer(Socket socket, byte[] payload, TimeSpan timeout)
    {
        _sending = Task.Run(async () =>
        {
            for (int at = 0; at < payload.Length; at += 64 * 1024)
            {
                await socket.SendAsync(payload.AsMemory(at, Math.Min(64 * 1024, payload.Length - at)));
            }
        });
        _receiving = Task.Run(async () =>
        {
            var received = new byte[payload.Length];
            int at = 0;
            using var cancel = new CancellationTokenSource(timeout);
            while (at < received.Length)
            {
                int n = await socket.ReceiveAsync(received.AsMemory(at), SocketFlags.None, cancel.Token);
                Assert.NotEqual(0, n);
                at += n;
                Interlocked.Exchange(ref _echoed, at);
            }

            return received;
        });
    }

    /// <summary>Bytes echoed back so far.</summary>
    public long Echoed => Interlocked.Read(ref _echoed);

    public static EchoTransfer Start(Socket socket, byte[] payload, TimeSpan timeout) => new(socket, payload, timeout);

    /// <summary>Waits for the whole payload to be sent and echoed: what came back.</summary>
    public async Task<byte[]> CompleteAsync(TimeSpan timeout)
    {
        await _sending.WaitAsync(timeout);
        return await _receiving.WaitAsync(timeout);
    }
}
