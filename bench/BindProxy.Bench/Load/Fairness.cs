using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using BindProxy.Bench.Measurement;

namespace BindProxy.Bench.Load;

/// <summary>Round trips of light connections while bulk streams run through the same proxy.</summary>
internal sealed record FairnessResult(
    string Test,
    string Target,
    int Bulk,
    int Pingers,
    double IntervalMs,
    double DurationS,
    int Size,
    long Pings,
    int Failed,
    double P50Us,
    double P90Us,
    double P99Us,
    double P999Us,
    double MaxUs,
    double BulkGbps,
    SortedDictionary<string, int> Failures);

/// <summary>
/// A proxy that serves each ready connection until it runs dry starves the others on its thread:
/// this runs <c>bulk</c> echo streams flat out (both directions loaded) and, beside them,
/// <c>pingers</c> connections that each exchange one small message every <c>interval</c>, and
/// reports the pingers' round trips. Blocking sockets on threads of their own, so the thread pool's
/// scheduling stays out of the figures.
/// </summary>
internal static class Fairness
{
    private const int BulkChunk = 64 * 1024;
    private const int MaxSamplesPerPinger = 1_000_000;

    public static FairnessResult Run(
        IPEndPoint target, int bulk, int pingers, TimeSpan interval, TimeSpan duration, TimeSpan warmup, int size, TimeSpan timeout,
        CancellationToken cancellationToken)
    {
        var errors = new ErrorCounts();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var bulkBytes = new StrongBox<long>();
        var threads = new List<Thread>();
        var bulkSockets = new List<Socket>();

        // Bulk first, so every pinger starts beside streams already at full speed.
        for (var i = 0; i < bulk; i++)
        {
            Socket socket;
            try
            {
                socket = Connect(target, timeout, cancellationToken);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                errors.Add("bulk connect: " + ErrorCounts.Describe(e));
                continue;
            }

            bulkSockets.Add(socket);
            var seed = i;
            threads.Add(Start($"bulk {i} send", () => BulkSend(socket, seed, errors, stop.Token)));
            threads.Add(Start($"bulk {i} receive", () => BulkReceive(socket, bulkBytes, errors, stop.Token)));
        }

        // Bulk throughput is counted from here to the end, past the warm-up.
        Thread.Sleep(warmup);
        long bulkAtStart = Interlocked.Read(ref bulkBytes.Value);
        var started = Stopwatch.GetTimestamp();
        var deadline = started + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var samples = new List<long>[pingers];
        for (var i = 0; i < pingers; i++)
        {
            var index = i;
            samples[i] = [];
            var offset = TimeSpan.FromTicks(interval.Ticks * i / pingers);
            threads.Add(Start($"pinger {i}", () => Ping(target, size, index, offset, interval, timeout, deadline, samples[index], errors, stop.Token)));
        }

        // Pingers end on their own at the deadline; then the bulk streams are stopped.
        foreach (var thread in threads.Where(t => t.Name!.StartsWith("pinger", StringComparison.Ordinal)))
        {
            thread.Join(duration + timeout + TimeSpan.FromSeconds(5));
        }

        var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
        long bulkMoved = Interlocked.Read(ref bulkBytes.Value) - bulkAtStart;
        stop.Cancel();
        foreach (var socket in bulkSockets)
        {
            socket.Dispose(); // unblocks the bulk threads' sends and receives
        }

        foreach (var thread in threads)
        {
            thread.Join(TimeSpan.FromSeconds(5));
        }

        var all = samples.SelectMany(s => s).ToArray();
        var p = Percentiles.Microseconds(all, 50, 90, 99, 99.9, 100);
        return new FairnessResult(
            "fairness", target.ToString(), bulk, pingers, interval.TotalMilliseconds, Math.Round(elapsed, 3), size, all.Length, errors.Total,
            Round(p[0]), Round(p[1]), Round(p[2]), Round(p[3]), Round(p[4]),
            Math.Round(bulkMoved * 8 / elapsed / 1e9, 3), errors.Snapshot());
    }

    private static double Round(double us) => Math.Round(us, 1);

    private static Thread Start(string name, Action body)
    {
        var thread = new Thread(() => body()) { IsBackground = true, Name = name };
        thread.Start();
        return thread;
    }

    private static Socket Connect(IPEndPoint target, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var socket = SocketIo.ConnectAsync(target, timeout, cancellationToken).GetAwaiter().GetResult();
        socket.Blocking = true;
        socket.SendTimeout = (int)timeout.TotalMilliseconds;
        socket.ReceiveTimeout = (int)timeout.TotalMilliseconds;
        return socket;
    }

    private static void BulkSend(Socket socket, int seed, ErrorCounts errors, CancellationToken stop)
    {
        var chunk = SocketIo.Pattern(BulkChunk, seed);
        try
        {
            while (!stop.IsCancellationRequested)
            {
                socket.Send(chunk);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            if (!stop.IsCancellationRequested)
            {
                errors.Add("bulk send: " + ErrorCounts.Describe(e));
            }
        }
    }

    /// <summary>Reads the echo of a bulk stream until it is stopped, adding what it reads to <paramref name="total"/>.</summary>
    private static void BulkReceive(Socket socket, StrongBox<long> total, ErrorCounts errors, CancellationToken stop)
    {
        var buffer = new byte[BulkChunk];
        try
        {
            while (!stop.IsCancellationRequested)
            {
                var n = socket.Receive(buffer);
                if (n == 0)
                {
                    break;
                }

                Interlocked.Add(ref total.Value, n);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            if (!stop.IsCancellationRequested)
            {
                errors.Add("bulk receive: " + ErrorCounts.Describe(e));
            }
        }
    }

    private static void Ping(
        IPEndPoint target, int size, int seed, TimeSpan offset, TimeSpan interval, TimeSpan timeout, long deadline, List<long> samples,
        ErrorCounts errors, CancellationToken stop)
    {
        var message = SocketIo.Pattern(size, seed + 1000);
        var reply = new byte[size];
        try
        {
            using var socket = Connect(target, timeout, stop);

            // Pingers start out of phase, so they do not all send in the same millisecond.
            Thread.Sleep(offset);
            while (Stopwatch.GetTimestamp() < deadline && samples.Count < MaxSamplesPerPinger && !stop.IsCancellationRequested)
            {
                var start = Stopwatch.GetTimestamp();
                var sent = message.AsSpan();
                while (!sent.IsEmpty)
                {
                    sent = sent[socket.Send(sent)..];
                }

                var read = 0;
                while (read < size)
                {
                    var n = socket.Receive(reply.AsSpan(read));
                    if (n == 0)
                    {
                        errors.Add("ping: EndOfStream");
                        return;
                    }

                    read += n;
                }

                samples.Add(Stopwatch.GetTimestamp() - start);
                if (!reply.AsSpan().SequenceEqual(message))
                {
                    errors.Add("ping: EchoMismatch");
                    return;
                }

                Thread.Sleep(interval);
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            errors.Add("ping: " + ErrorCounts.Describe(e));
        }
    }
}
