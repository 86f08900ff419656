using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace BindProxy.Tests.Infrastructure;

/// <summary>
/// A black-box integrity workload through a proxy: many connections at once, each with a random
/// shape (echo, both ways at once, one way only), random sizes, tiny receive buffers on some clients
/// and upstreams, half-closes, and readers that pause now and then; every byte is checked both ways
/// with SHA-256. Seeded, so a failing connection can be run again alone.
/// </summary>
public sealed class IntegrityLoad
{
    private const int HeaderSize = 28;

    public enum Shape : byte
    {
        /// <summary>The upstream echoes what it reads and half-closes after the client's FIN.</summary>
        Echo,

        /// <summary>Both send their own bytes at once; each half-closes when done.</summary>
        Both,

        /// <summary>Only the client sends.</summary>
        Up,

        /// <summary>Only the upstream sends.</summary>
        Down,
    }

    /// <summary>One connection's plan. Buffer sizes of 0 leave the system's.</summary>
    public sealed record Plan(int Id, Shape Shape, int UpBytes, int DownBytes, int ClientReceiveBuffer, int UpstreamReceiveBuffer, uint Seed)
    {
        public int ExpectedDown => Shape == Shape.Echo ? UpBytes : DownBytes;
    }

    /// <summary>How one connection ended; <see cref="Ok"/> when every byte arrived intact both ways.</summary>
    public sealed record Outcome(Plan Plan, long ClientReceived, bool ClientIntact, long UpstreamReceived, bool UpstreamIntact, string? Error)
    {
        public bool Ok => Error is null && ClientIntact && UpstreamIntact && ClientReceived == Plan.ExpectedDown && UpstreamReceived == Plan.UpBytes;

        public override string ToString() =>
            $"connection {Plan.Id} ({Plan.Shape}, {Plan.UpBytes} B up, {Plan.ExpectedDown} B down, client buffer {Plan.ClientReceiveBuffer}, upstream buffer {Plan.UpstreamReceiveBuffer}, seed {Plan.Seed}): " +
            $"client got {ClientReceived} B{(ClientIntact ? "" : " CHANGED")}, upstream got {UpstreamReceived} B{(UpstreamIntact ? "" : " CHANGED")}{(Error is null ? "" : $"; {Error}")}";
    }

    private readonly Dictionary<int, (long Received, bool Intact)> _upstreamSeen = [];

    // Each end closes only once both have read everything: a socket closed with bytes still in its
    // send queue leaves them to an orphan, and the test's own ends must not lose bytes that way.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, (TaskCompletionSource Client, TaskCompletionSource Upstream)> _done = new();

    // A reader that pauses waits for another connection to finish: a real signal, a while apart.
    private TaskCompletionSource _anotherFinished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _running;

    private void Finished()
    {
        Interlocked.Decrement(ref _running);
        Interlocked.Exchange(ref _anotherFinished, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    /// <summary>Holds a reader up until some other connection finishes (not at all when it is the only one left).</summary>
    private Task PauseAsync(CancellationToken ct) =>
        Volatile.Read(ref _running) > 1 ? Volatile.Read(ref _anotherFinished).Task.WaitAsync(ct) : Task.CompletedTask;

    private (TaskCompletionSource Client, TaskCompletionSource Upstream) Done(int id) =>
        _done.GetOrAdd(id, _ => (new(TaskCreationOptions.RunContinuationsAsynchronously), new(TaskCreationOptions.RunContinuationsAsynchronously)));

    public static IReadOnlyList<Plan> Plans(int seed, int count, int maxBytes)
    {
        var random = new Random(seed);
        int[] buffers = [0, 0, 0, 2048, 4096, 16384];
        return [.. Enumerable.Range(0, count).Select(id =>
        {
            var shape = (Shape)random.Next(4);
            int up = shape == Shape.Down ? 0 : random.Next(maxBytes + 1);
            int down = shape is Shape.Both or Shape.Down ? random.Next(maxBytes + 1) : 0;
            return new Plan(id, shape, up, down, buffers[random.Next(buffers.Length)], buffers[random.Next(buffers.Length)], (uint)random.Next());
        })];
    }

    /// <summary>The upstream side: a server that reads each connection's plan from its first bytes and plays its part.</summary>
    public TestServer StartUpstream() => TestServer.Start(ServeAsync, backlog: 4096);

    private async Task ServeAsync(Socket socket, CancellationToken ct)
    {
        var header = await ReadHeaderAsync(socket, ct);
        if (header is not { } plan)
        {
            return;
        }

        if (plan.UpstreamReceiveBuffer > 0)
        {
            socket.ReceiveBufferSize = plan.UpstreamReceiveBuffer;
        }

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long received = 0;
        var reading = Task.Run(async () =>
        {
            var buffer = new byte[64 * 1024];
            int n;
            while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, ct)) > 0)
            {
                hash.AppendData(buffer, 0, n);
                received += n;
                if (plan.Shape == Shape.Echo)
                {
                    await SendAllAsync(socket, buffer.AsMemory(0, n), ct);
                }
            }
        }, ct);
        if (plan.Shape is Shape.Both or Shape.Down)
        {
            await SendStreamAsync(socket, plan.Seed ^ 0x5A5A5A5A, plan.DownBytes, ct);
            socket.Shutdown(SocketShutdown.Send);
        }

        await reading;
        if (plan.Shape is Shape.Echo or Shape.Up)
        {
            socket.Shutdown(SocketShutdown.Send);
        }

        bool intact = hash.GetHashAndReset().AsSpan().SequenceEqual(Digest(plan.Seed, plan.UpBytes));
        lock (_upstreamSeen)
        {
            _upstreamSeen[plan.Id] = (received, intact);
        }

        var done = Done(plan.Id);
        done.Upstream.TrySetResult();
        await done.Client.Task.WaitAsync(TimeSpan.FromMinutes(5), ct);
    }

    /// <summary>Runs every plan through <paramref name="proxy"/>, <paramref name="parallel"/> at a time, each within <paramref name="patience"/>.</summary>
    public async Task<IReadOnlyList<Outcome>> RunAsync(IPEndPoint proxy, IReadOnlyList<Plan> plans, int parallel, TimeSpan patience)
    {
        // Plans of another run reuse the same ids: what the upstream saw of those is not this run's.
        _done.Clear();
        lock (_upstreamSeen)
        {
            _upstreamSeen.Clear();
        }

        using var gate = new SemaphoreSlim(parallel);
        var outcomes = await Task.WhenAll(plans.Select(async plan =>
        {
            await gate.WaitAsync();
            Interlocked.Increment(ref _running);
            try
            {
                return await RunOneAsync(proxy, plan, patience, Done(plan.Id));
            }
            finally
            {
                Finished();
                gate.Release();
            }
        }));

        // The upstream records its side when the client's FIN arrives; a connection that ended badly may never have.
        lock (_upstreamSeen)
        {
            return [.. outcomes.Select(o => _upstreamSeen.TryGetValue(o.Plan.Id, out var seen)
                ? o with { UpstreamReceived = seen.Received, UpstreamIntact = seen.Intact }
                : o with { Error = o.Error ?? "the upstream never saw the client's FIN" })];
        }
    }

    private async Task<Outcome> RunOneAsync(IPEndPoint proxy, Plan plan, TimeSpan patience, (TaskCompletionSource Client, TaskCompletionSource Upstream) done)
    {
        using var timeout = new CancellationTokenSource(patience);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        if (plan.ClientReceiveBuffer > 0)
        {
            client.ReceiveBufferSize = plan.ClientReceiveBuffer; // before connect, so the window is small from the start
        }

        long received = 0;
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        try
        {
            await client.ConnectAsync(proxy, timeout.Token);
            var header = new byte[HeaderSize];
            WriteHeader(plan, header);
            await SendAllAsync(client, header, timeout.Token);
            var sending = Task.Run(async () =>
            {
                await SendStreamAsync(client, plan.Seed, plan.UpBytes, timeout.Token);
                client.Shutdown(SocketShutdown.Send);
            }, timeout.Token);

            var pauses = new Random((int)plan.Seed);
            var buffer = new byte[16 * 1024];
            int n;
            while ((n = await client.ReceiveAsync(buffer, SocketFlags.None, timeout.Token)) > 0)
            {
                hash.AppendData(buffer, 0, n);
                received += n;
                if (pauses.Next(100) == 0)
                {
                    await PauseAsync(timeout.Token); // a reader that is sometimes slow
                }
            }

            await sending;
            done.Client.TrySetResult();
            await done.Upstream.Task.WaitAsync(timeout.Token);
            var expected = plan.Shape == Shape.Echo ? Digest(plan.Seed, plan.UpBytes) : Digest(plan.Seed ^ 0x5A5A5A5A, plan.DownBytes);
            return new Outcome(plan, received, hash.GetHashAndReset().AsSpan().SequenceEqual(expected), 0, true, null);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            done.Client.TrySetResult();
            return new Outcome(plan, received, false, 0, true, e is OperationCanceledException ? $"nothing more after {patience.TotalSeconds:0} s" : e.Message);
        }
    }

    private static void WriteHeader(Plan plan, Span<byte> header)
    {
        BinaryPrimitives.WriteInt32BigEndian(header, plan.Id);
        header[4] = (byte)plan.Shape;
        BinaryPrimitives.WriteInt32BigEndian(header[8..], plan.UpBytes);
        BinaryPrimitives.WriteInt32BigEndian(header[12..], plan.DownBytes);
        BinaryPrimitives.WriteInt32BigEndian(header[16..], plan.ClientReceiveBuffer);
        BinaryPrimitives.WriteInt32BigEndian(header[20..], plan.UpstreamReceiveBuffer);
        BinaryPrimitives.WriteUInt32BigEndian(header[24..], plan.Seed);
    }

    private static async Task<Plan?> ReadHeaderAsync(Socket socket, CancellationToken ct)
    {
        var header = new byte[HeaderSize];
        int at = 0;
        while (at < HeaderSize)
        {
            int n = await socket.ReceiveAsync(header.AsMemory(at), SocketFlags.None, ct);
            if (n == 0)
            {
                return null;
            }

            at += n;
        }

        return new Plan(BinaryPrimitives.ReadInt32BigEndian(header), (Shape)header[4], BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(8)),
            BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(12)), BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(16)),
            BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(20)), BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(24)));
    }

    private static async Task SendStreamAsync(Socket socket, uint seed, int bytes, CancellationToken ct)
    {
        var chunk = new byte[64 * 1024];
        var stream = new Xorshift(seed);
        for (int left = bytes; left > 0;)
        {
            int size = Math.Min(left, chunk.Length);
            stream.Fill(chunk.AsSpan(0, size));
            await SendAllAsync(socket, chunk.AsMemory(0, size), ct);
            left -= size;
        }
    }

    private static async Task SendAllAsync(Socket socket, ReadOnlyMemory<byte> bytes, CancellationToken ct)
    {
        while (!bytes.IsEmpty)
        {
            bytes = bytes[await socket.SendAsync(bytes, SocketFlags.None, ct)..];
        }
    }

    private static byte[] Digest(uint seed, int bytes)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var chunk = new byte[64 * 1024];
        var stream = new Xorshift(seed);
        for (int left = bytes; left > 0;)
        {
            int size = Math.Min(left, chunk.Length);
            stream.Fill(chunk.AsSpan(0, size));
            hash.AppendData(chunk, 0, size);
            left -= size;
        }

        return hash.GetHashAndReset();
    }

    /// <summary>A fast deterministic byte stream (xorshift32), so both ends make the same bytes without keeping them.</summary>
    private struct Xorshift(uint seed)
    {
        private uint _state = seed == 0 ? 0x9E3779B9 : seed;

        public void Fill(Span<byte> span)
        {
            for (int i = 0; i < span.Length; i++)
            {
                _state ^= _state << 13;
                _state ^= _state >> 17;
                _state ^= _state << 5;
                span[i] = (byte)_state;
            }
        }
    }
}

/// <summary>
/// Load beside a test, of the kind that finds timing faults: every core kept busy, and many short
/// processes starting (as when a test suite runs), until disposed.
/// </summary>
public sealed class MachineLoad : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _work = [];

    public MachineLoad(TimeSpan bound)
    {
        _stop.CancelAfter(bound);
        for (int i = 0; i < Environment.ProcessorCount; i++)
        {
            _work.Add(Task.Factory.StartNew(() =>
            {
                double x = 1;
                while (!_stop.IsCancellationRequested)
                {
                    for (int j = 0; j < 100_000; j++)
                    {
                        x = Math.Sqrt(x + j);
                    }
                }

                GC.KeepAlive(x);
            }, TaskCreationOptions.LongRunning));
        }

        _work.Add(Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("/bin/sh", "-c true") { UseShellExecute = false });
                    if (process is not null)
                    {
                        await process.WaitForExitAsync(_stop.Token);
                    }

                    Started++;
                }
                catch (OperationCanceledException)
                {
                }
            }
        }));
    }

    /// <summary>Processes started so far.</summary>
    public int Started { get; private set; }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await Task.WhenAll(_work);
        _stop.Dispose();
    }
}
