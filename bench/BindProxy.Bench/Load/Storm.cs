using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using BindProxy.Bench.Measurement;

namespace BindProxy.Bench.Load;

/// <summary>Round trips of light connections before and during a storm of clients the proxy refuses.</summary>
internal sealed record StormResult(
    string Test,
    string Target,
    int Pingers,
    int Held,
    long Attempts,
    long Refused,
    long Served,
    long BaselinePings,
    double BaselineP50Us,
    double BaselineP99Us,
    double BaselineMaxUs,
    long StormPings,
    double StormP50Us,
    double StormP99Us,
    double StormMaxUs,
    double StormSeconds,
    int Failed,
    SortedDictionary<string, int> Failures);

/// <summary>
/// What a refusal storm costs the connections a proxy already serves: <c>pingers</c> connections
/// are opened first, then <c>fill</c> more are opened and held (at a lowered open-files limit they
/// use up the proxy's descriptors, and the rest are refused), then the pingers measure round trips
/// alone for <c>baseline</c>, and again while <c>concurrency</c> workers make <c>attempts</c>
/// connections that the proxy must refuse (accept and reset), at <c>rate</c> a second if given. Accepting and refusing runs on the
/// same threads as the pingers' bytes (on the relay engine, the loops), so a refusal path that
/// blocks — a scan of open descriptors, a log line written to a slow console — shows here.
/// </summary>
internal static class Storm
{
    public static StormResult Run(IPEndPoint target, int pingers, int fill, long attempts, int concurrency, int rate, TimeSpan baseline,
        TimeSpan interval, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var errors = new ErrorCounts();
        var pingSockets = new List<Socket>();
        for (int i = 0; i < pingers; i++)
        {
            pingSockets.Add(Connect(target, timeout, cancellationToken));
        }

        // Fill the proxy: connections it holds (echo verified), until it refuses or fill is reached.
        var held = new List<Socket>();
        for (int i = 0; i < fill; i++)
        {
            try
            {
                var socket = Connect(target, timeout, cancellationToken);
                if (Echo(socket, new byte[16]))
                {
                    held.Add(socket);
                }
                else
                {
                    socket.Dispose();
                }
            }
            catch (SocketException)
            {
            }
        }

        try
        {
            var before = Measure(pingSockets, interval, timeout, errors, () => false, baseline, cancellationToken);

            long made = 0, refused = 0, served = 0;
            var storming = Stopwatch.StartNew();
            var workers = Enumerable.Range(0, concurrency).Select(_ => new Thread(() =>
            {
                var probe = new byte[16];
                long n;
                while ((n = Interlocked.Increment(ref made)) <= attempts && !cancellationToken.IsCancellationRequested)
                {
                    // Paced: attempt n is due n / rate seconds into the storm (0: as fast as the workers go).
                    if (rate > 0 && TimeSpan.FromSeconds((double)n / rate) - storming.Elapsed is { Ticks: > 0 } early)
                    {
                        Thread.Sleep(early);
                    }

                    try
                    {
                        using var socket = Connect(target, timeout, cancellationToken);
                        if (Echo(socket, probe))
                        {
                            Interlocked.Increment(ref served);
                        }
                        else
                        {
                            Interlocked.Increment(ref refused);
                        }
                    }
                    catch (SocketException)
                    {
                        Interlocked.Increment(ref refused);
                    }
                }
            }) { IsBackground = true }).ToList();
            workers.ForEach(w => w.Start());
            var during = Measure(pingSockets, interval, timeout, errors, () => workers.All(w => !w.IsAlive), TimeSpan.FromMinutes(5), cancellationToken);
            workers.ForEach(w => w.Join());
            double seconds = storming.Elapsed.TotalSeconds;

            var b = Percentiles.Microseconds(before, 50, 99, 100);
            var d = Percentiles.Microseconds(during, 50, 99, 100);
            return new StormResult("storm", target.ToString(), pingers, held.Count, Math.Min(made, attempts), refused, served,
                before.Length, Round(b[0]), Round(b[1]), Round(b[2]), during.Length, Round(d[0]), Round(d[1]), Round(d[2]),
                Math.Round(seconds, 2), errors.Total, errors.Snapshot());
        }
        finally
        {
            held.ForEach(s => s.Dispose());
            pingSockets.ForEach(s => s.Dispose());
        }
    }

    /// <summary>Every pinger exchanges a message every <paramref name="interval"/> until <paramref name="done"/> or <paramref name="limit"/>.</summary>
    private static long[] Measure(List<Socket> sockets, TimeSpan interval, TimeSpan timeout, ErrorCounts errors, Func<bool> done, TimeSpan limit, CancellationToken cancellationToken)
    {
        var samples = new List<long>[sockets.Count];
        var end = Stopwatch.GetTimestamp() + (long)(limit.TotalSeconds * Stopwatch.Frequency);
        var threads = sockets.Select((socket, i) =>
        {
            samples[i] = [];
            return new Thread(() =>
            {
                var message = new byte[64];
                while (!done() && Stopwatch.GetTimestamp() < end && !cancellationToken.IsCancellationRequested)
                {
                    long start = Stopwatch.GetTimestamp();
                    try
                    {
                        if (!Echo(socket, message))
                        {
                            errors.Add("ping: closed");
                            return;
                        }
                    }
                    catch (SocketException e)
                    {
                        errors.Add("ping: " + ErrorCounts.Describe(e));
                        return;
                    }

                    samples[i].Add(Stopwatch.GetTimestamp() - start);
                    Thread.Sleep(interval);
                }
            }) { IsBackground = true };
        }).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join(limit + timeout + TimeSpan.FromSeconds(5)));
        return [.. samples.SelectMany(s => s)];
    }

    private static bool Echo(Socket socket, byte[] message)
    {
        socket.Send(message);
        var reply = new byte[message.Length];
        for (int at = 0; at < reply.Length;)
        {
            int n = socket.Receive(reply, at, reply.Length - at, SocketFlags.None);
            if (n == 0)
            {
                return false;
            }

            at += n;
        }

        return true;
    }

    private static Socket Connect(IPEndPoint target, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var socket = SocketIo.ConnectAsync(target, timeout, cancellationToken).GetAwaiter().GetResult();
        socket.Blocking = true;
        socket.SendTimeout = (int)timeout.TotalMilliseconds;
        socket.ReceiveTimeout = (int)timeout.TotalMilliseconds;
        return socket;
    }

    private static double Round(double us) => Math.Round(us, 1);
}
