using System.Diagnostics;
using System.Net.Sockets;
using System.Threading.Channels;
using BindProxy.Bench.Load;
using BindProxy.Bench.Measurement;

namespace BindProxy.Bench.Soak;

/// <summary>
/// The Tcp route's traffic: long-lived connections that each exchange one message per interval
/// (round-trip latency), and connection churn at a fixed rate (connect, one exchange, close).
/// A long-lived connection that fails is counted, closed and opened again a second later.
/// </summary>
internal sealed class TcpLoad(SoakSettings settings, ErrorCounts errors)
{
    private const int ChurnWorkers = 32;
    private static readonly TimeSpan ReconnectDelay = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan PaceTick = TimeSpan.FromMilliseconds(10);

    private long _pingOk;
    private long _pingFailed;
    private long _reconnects;
    private int _connected;
    private long _churnOk;
    private long _churnFailed;
    private long _churnBehind;

    public LatencyRecorder Ping { get; } = new();

    public LatencyRecorder Churn { get; } = new();

    public TcpCounters Counters => new(
        Volatile.Read(ref _connected),
        Interlocked.Read(ref _pingOk),
        Interlocked.Read(ref _pingFailed),
        Interlocked.Read(ref _reconnects),
        Interlocked.Read(ref _churnOk),
        Interlocked.Read(ref _churnFailed),
        Interlocked.Read(ref _churnBehind));

    /// <summary>Runs both loads until <paramref name="stop"/> is cancelled; returns once every connection is closed.</summary>
    public async Task RunAsync(CancellationToken stop)
    {
        var tasks = new List<Task>(settings.Connections + ChurnWorkers + 1);
        for (var i = 0; i < settings.Connections; i++)
        {
            tasks.Add(HoldConnectionAsync(i, stop));
        }

        if (settings.ChurnRate > 0)
        {
            // The pacer hands out one ticket per connection due; the workers take them. A full
            // queue means the workers fell a second behind: that shortfall is counted, not queued.
            var tickets = Channel.CreateBounded<long>(new BoundedChannelOptions(settings.ChurnRate)
            {
                FullMode = BoundedChannelFullMode.Wait,
                SingleWriter = true,
            });
            for (var w = 0; w < ChurnWorkers; w++)
            {
                tasks.Add(ChurnWorkerAsync(tickets.Reader, w, stop));
            }

            tasks.Add(PaceChurnAsync(tickets.Writer, stop));
        }

        await Task.WhenAll(tasks);
    }

    private async Task HoldConnectionAsync(int index, CancellationToken stop)
    {
        var message = SocketIo.Pattern(settings.MessageSize, index);
        var reply = new byte[settings.MessageSize];

        // Spread the connections over one interval, so exchanges come at an even rate rather than in a burst.
        var offset = settings.PingEvery * index / Math.Max(1, settings.Connections);
        if (!await DelayAsync(offset, stop))
        {
            return;
        }

        var first = true;
        while (!stop.IsCancellationRequested)
        {
            if (!first)
            {
                Interlocked.Increment(ref _reconnects);
                if (!await DelayAsync(ReconnectDelay, stop))
                {
                    return;
                }
            }

            first = false;
            Socket socket;
            try
            {
                socket = await SocketIo.ConnectAsync(settings.TcpListen, settings.Timeout, stop);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                Interlocked.Increment(ref _pingFailed);
                errors.Add("tcp connect " + ErrorCounts.Describe(e));
                continue;
            }

            using (socket)
            {
                Interlocked.Increment(ref _connected);
                try
                {
                    await PingUntilFailureAsync(socket, message, reply, stop);
                }
                finally
                {
                    Interlocked.Decrement(ref _connected);
                }
            }
        }
    }

    /// <summary>One exchange per interval until one fails or the run stops.</summary>
    private async Task PingUntilFailureAsync(Socket socket, byte[] message, byte[] reply, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(settings.PingEvery);
        while (!stop.IsCancellationRequested)
        {
            var started = Stopwatch.GetTimestamp();
            string? failure;
            try
            {
                failure = await SocketIo.ExchangeAsync(socket, message, reply, settings.Timeout, stop);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }

            if (failure is not null)
            {
                Interlocked.Increment(ref _pingFailed);
                errors.Add("tcp ping " + failure);
                return;
            }

            Ping.RecordTicks(Stopwatch.GetTimestamp() - started);
            Interlocked.Increment(ref _pingOk);
            try
            {
                if (!await timer.WaitForNextTickAsync(stop))
                {
                    return;
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
        }
    }

    private async Task PaceChurnAsync(ChannelWriter<long> tickets, CancellationToken stop)
    {
        var started = Stopwatch.GetTimestamp();
        long issued = 0;
        using var timer = new PeriodicTimer(PaceTick);
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                var due = (long)(Stopwatch.GetElapsedTime(started).TotalSeconds * settings.ChurnRate);
                for (; issued < due; issued++)
                {
                    if (!tickets.TryWrite(issued))
                    {
                        Interlocked.Increment(ref _churnBehind);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        finally
        {
            tickets.Complete();
        }
    }

    private async Task ChurnWorkerAsync(ChannelReader<long> tickets, int worker, CancellationToken stop)
    {
        var message = SocketIo.Pattern(settings.MessageSize, 100_000 + worker);
        var reply = new byte[settings.MessageSize];
        try
        {
            await foreach (var _ in tickets.ReadAllAsync(stop))
            {
                var started = Stopwatch.GetTimestamp();
                string? failure;
                try
                {
                    using var socket = await SocketIo.ConnectAsync(settings.TcpListen, settings.Timeout, stop);
                    failure = await SocketIo.ExchangeAsync(socket, message, reply, settings.Timeout, stop);
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception e) when (e is SocketException or OperationCanceledException)
                {
                    failure = ErrorCounts.Describe(e);
                }

                if (failure is null)
                {
                    Churn.RecordTicks(Stopwatch.GetTimestamp() - started);
                    Interlocked.Increment(ref _churnOk);
                }
                else
                {
                    Interlocked.Increment(ref _churnFailed);
                    errors.Add("tcp churn " + failure);
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>Waits, or returns false when the run stops first.</summary>
    private static async Task<bool> DelayAsync(TimeSpan delay, CancellationToken stop)
    {
        try
        {
            await Task.Delay(delay, stop);
            return true;
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            return false;
        }
    }
}

/// <summary>Cumulative counts of the Tcp load; <c>Connected</c> is the long-lived connections open now.</summary>
internal readonly record struct TcpCounters(
    int Connected,
    long PingOk,
    long PingFailed,
    long Reconnects,
    long ChurnOk,
    long ChurnFailed,
    long ChurnBehind);
