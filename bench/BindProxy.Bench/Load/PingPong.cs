using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using BindProxy.Bench.Measurement;

namespace BindProxy.Bench.Load;

/// <summary>Round-trip latency of one connection with exactly one message in flight.</summary>
internal sealed record PingPongResult(
    string Test,
    string Target,
    int Size,
    int Count,
    int Warmup,
    int Completed,
    string? Error,
    double P50Us,
    double P90Us,
    double P99Us,
    double P999Us,
    double MaxUs,
    double MeanUs);

internal static class PingPong
{
    /// <summary>
    /// Uses blocking calls on one thread: the thread-pool hop of an async receive would add a few
    /// microseconds of the tool's own noise to every sample.
    /// </summary>
    public static PingPongResult Run(IPEndPoint target, int size, int count, int warmup, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var samples = new long[count];
        var completed = 0;
        string? error = null;
        var message = SocketIo.Pattern(size, 1);
        var reply = new byte[size];
        try
        {
            using var socket = SocketIo.ConnectAsync(target, timeout, cancellationToken).GetAwaiter().GetResult();
            socket.Blocking = true;
            socket.SendTimeout = (int)timeout.TotalMilliseconds;
            socket.ReceiveTimeout = (int)timeout.TotalMilliseconds;
            for (var i = 0; i < warmup + count && !cancellationToken.IsCancellationRequested; i++)
            {
                var start = Stopwatch.GetTimestamp();
                SocketIo.SendAll(socket, message);
                if (!SocketIo.ReceiveExact(socket, reply))
                {
                    error = "EndOfStream";
                    break;
                }

                var elapsed = Stopwatch.GetTimestamp() - start;
                if (!reply.AsSpan().SequenceEqual(message))
                {
                    error = "EchoMismatch";
                    break;
                }

                if (i >= warmup)
                {
                    samples[completed++] = elapsed;
                }
            }
        }
        catch (SocketException e)
        {
            error = ErrorCounts.Describe(e);
        }
        catch (OperationCanceledException e)
        {
            error = ErrorCounts.Describe(e);
        }

        var measured = samples.AsSpan(0, completed);
        var mean = completed > 0 ? Percentiles.TicksToMicroseconds((long)measured.ToArray().Average()) : 0;
        var p = Percentiles.Microseconds(measured, 50, 90, 99, 99.9, 100);
        return new PingPongResult(
            "pingpong", target.ToString(), size, count, warmup, completed, error,
            Round(p[0]), Round(p[1]), Round(p[2]), Round(p[3]), Round(p[4]), Round(mean));
    }

    private static double Round(double us) => Math.Round(us, 1);
}
