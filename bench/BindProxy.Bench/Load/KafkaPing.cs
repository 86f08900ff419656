using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using BindProxy.Bench.Measurement;

namespace BindProxy.Bench.Load;

/// <summary>Round trips of Kafka ApiVersions requests on one connection, one in flight.</summary>
internal sealed record KafkaPingResult(
    string Test,
    string Target,
    int ApiVersion,
    double IntervalMs,
    double DurationS,
    int Completed,
    string? Error,
    double P50Us,
    double P90Us,
    double P99Us,
    double P999Us,
    double MaxUs,
    double MeanUs);

/// <summary>
/// Sends raw ApiVersions v0/v1 request frames (size, api key 18, version, correlation id, client
/// id; no body) one at a time and reads each size-prefixed response, checking its correlation id
/// and error code. A Kafka client's small requests beside bulk traffic on the same route. Blocking
/// calls on one thread, as <see cref="PingPong"/>, to keep the tool's own scheduling out.
/// </summary>
internal static class KafkaPing
{
    private const short ApiVersionsKey = 18;
    private const string ClientId = "kafka-ping";
    private const int MaxResponse = 1 << 20;

    public static KafkaPingResult Run(
        IPEndPoint target, int count, int warmup, TimeSpan duration, TimeSpan interval, short version, TimeSpan timeout,
        Action<IPEndPoint> connected, CancellationToken cancellationToken)
    {
        var samples = new long[count];
        var completed = 0;
        string? error = null;
        var request = new byte[4 + 2 + 2 + 4 + 2 + ClientId.Length];
        BinaryPrimitives.WriteInt32BigEndian(request, request.Length - 4);
        BinaryPrimitives.WriteInt16BigEndian(request.AsSpan(4), ApiVersionsKey);
        BinaryPrimitives.WriteInt16BigEndian(request.AsSpan(6), version);
        BinaryPrimitives.WriteInt16BigEndian(request.AsSpan(12), (short)ClientId.Length);
        for (var c = 0; c < ClientId.Length; c++)
        {
            request[14 + c] = (byte)ClientId[c];
        }

        var sizeBuffer = new byte[4];
        var response = new byte[4096];
        var started = Stopwatch.GetTimestamp();
        var deadline = started + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        try
        {
            using var socket = SocketIo.ConnectAsync(target, timeout, cancellationToken).GetAwaiter().GetResult();
            socket.Blocking = true;
            socket.SendTimeout = (int)timeout.TotalMilliseconds;
            socket.ReceiveTimeout = (int)timeout.TotalMilliseconds;
            connected((IPEndPoint)socket.LocalEndPoint!);
            for (var i = 0; i < warmup + count && !cancellationToken.IsCancellationRequested && Stopwatch.GetTimestamp() < deadline; i++)
            {
                BinaryPrimitives.WriteInt32BigEndian(request.AsSpan(8), i);
                var start = Stopwatch.GetTimestamp();
                SocketIo.SendAll(socket, request);
                if (!SocketIo.ReceiveExact(socket, sizeBuffer))
                {
                    error = "EndOfStream";
                    break;
                }

                var size = BinaryPrimitives.ReadInt32BigEndian(sizeBuffer);
                if (size < 6 || size > MaxResponse)
                {
                    error = "BadResponseSize";
                    break;
                }

                if (response.Length < size)
                {
                    response = new byte[size];
                }

                if (!SocketIo.ReceiveExact(socket, response.AsSpan(0, size)))
                {
                    error = "EndOfStream";
                    break;
                }

                var elapsed = Stopwatch.GetTimestamp() - start;
                if (BinaryPrimitives.ReadInt32BigEndian(response) != i)
                {
                    error = "CorrelationMismatch";
                    break;
                }

                var code = BinaryPrimitives.ReadInt16BigEndian(response.AsSpan(4));
                if (code != 0)
                {
                    error = $"ErrorCode{code}";
                    break;
                }

                if (i >= warmup)
                {
                    samples[completed++] = elapsed;
                }

                if (interval > TimeSpan.Zero)
                {
                    Thread.Sleep(interval);
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

        var elapsedS = (Stopwatch.GetTimestamp() - started) / (double)Stopwatch.Frequency;
        var measured = samples.AsSpan(0, completed);
        var mean = completed > 0 ? Percentiles.TicksToMicroseconds((long)measured.ToArray().Average()) : 0;
        var p = Percentiles.Microseconds(measured, 50, 90, 99, 99.9, 100);
        return new KafkaPingResult(
            "kafka-ping", target.ToString(), version, interval.TotalMilliseconds, Math.Round(elapsedS, 3), completed, error,
            Round(p[0]), Round(p[1]), Round(p[2]), Round(p[3]), Round(p[4]), Round(mean));
    }

    private static double Round(double us) => Math.Round(us, 1);
}
