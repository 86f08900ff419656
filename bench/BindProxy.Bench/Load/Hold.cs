using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using BindProxy.Bench.Measurement;

namespace BindProxy.Bench.Load;

/// <summary>What the hold run was asked to do.</summary>
internal sealed record HoldSettings(
    IPEndPoint[] Targets,
    int Count,
    int Parallel,
    TimeSpan? Interval,
    int Bytes,
    TimeSpan HoldFor,
    int? Pid,
    TimeSpan Timeout);

/// <summary>What the hold run saw. RSS/PSS figures cover the whole process tree of <c>Pid</c>.</summary>
internal sealed record HoldResult(
    string Test,
    string[] Targets,
    int Requested,
    int Established,
    int Verified,
    int Failed,
    SortedDictionary<string, int> Failures,
    double OpenMs,
    double VerifyMs,
    ulong NofileSoft,
    ulong NofileHard,
    string? NofileError,
    int? Pid,
    int ProxyProcesses,
    long RssBeforeKb,
    long RssOpenKb,
    long RssEndKb,
    long PssBeforeKb,
    long PssEndKb,
    double? RssPerConnKb,
    double? PssPerConnKb,
    int TrafficRounds,
    long TrafficOk,
    int TrafficFailed,
    int HeldAtEnd);

/// <summary>
/// Opens and holds many connections, spread round-robin over the targets, and measures what they
/// cost the proxy process. Connects run with bounded parallelism; a connect that succeeds only
/// proves the proxy's kernel accepted it, so each connection is then verified with one echo.
/// </summary>
internal sealed class Hold(HoldSettings settings, FileLimit fileLimit)
{
    private readonly ErrorCounts _errors = new();
    private readonly Socket?[] _sockets = new Socket?[settings.Count];
    private long _trafficOk;
    private int _trafficFailed;

    public async Task<HoldResult> RunAsync(Action<string> progress, CancellationToken cancellationToken)
    {
        var before = SampleProxy();
        try
        {
            var openWatch = Stopwatch.StartNew();
            await ForEachAsync(Enumerable.Range(0, settings.Count), OpenAsync, cancellationToken);
            var openMs = openWatch.Elapsed.TotalMilliseconds;
            var established = _sockets.Count(s => s is not null);
            progress($"opened {established}/{settings.Count} in {openMs:F0} ms");

            var verifyWatch = Stopwatch.StartNew();
            if (settings.Bytes > 0)
            {
                await ForEachAsync(Enumerable.Range(0, settings.Count), VerifyAsync, cancellationToken);
            }

            var verifyMs = verifyWatch.Elapsed.TotalMilliseconds;
            var verified = _sockets.Count(s => s is not null);
            progress($"verified {verified} in {verifyMs:F0} ms; holding for {settings.HoldFor.TotalSeconds:F1} s");
            var opened = SampleProxy();

            var rounds = await HoldAsync(cancellationToken);
            var end = SampleProxy();
            var held = _sockets.Count(s => s is not null);

            double? rssPerConn = settings.Pid is null || verified == 0 ? null : Math.Round((end.RssKb - before.RssKb) / (double)verified, 2);
            double? pssPerConn = settings.Pid is null || verified == 0 ? null : Math.Round((end.PssKb - before.PssKb) / (double)verified, 2);
            return new HoldResult(
                "hold",
                [.. settings.Targets.Select(t => t.ToString())],
                settings.Count,
                established,
                verified,
                _errors.Total,
                _errors.Snapshot(),
                Math.Round(openMs, 1),
                Math.Round(verifyMs, 1),
                fileLimit.Soft,
                fileLimit.Hard,
                fileLimit.Error,
                settings.Pid,
                end.Processes,
                before.RssKb,
                opened.RssKb,
                end.RssKb,
                before.PssKb,
                end.PssKb,
                rssPerConn,
                pssPerConn,
                rounds,
                Interlocked.Read(ref _trafficOk),
                Volatile.Read(ref _trafficFailed),
                held);
        }
        finally
        {
            foreach (var socket in _sockets)
            {
                socket?.Dispose();
            }
        }
    }

    private TreeSample SampleProxy() => settings.Pid is { } pid ? ProcessTree.Sample(pid) : default;

    private async Task OpenAsync(int index, CancellationToken cancellationToken)
    {
        var target = settings.Targets[index % settings.Targets.Length];
        try
        {
            _sockets[index] = await SocketIo.ConnectAsync(target, settings.Timeout, cancellationToken);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            _errors.Add(e);
        }
    }

    private async Task VerifyAsync(int index, CancellationToken cancellationToken)
    {
        if (_sockets[index] is not { } socket)
        {
            return;
        }

        var message = SocketIo.Pattern(settings.Bytes, index);
        var failure = await SocketIo.ExchangeAsync(socket, message, new byte[message.Length], settings.Timeout, cancellationToken);
        if (failure is not null)
        {
            _errors.Add(failure);
            Drop(index);
        }
    }

    /// <summary>Waits out the hold time, exchanging one message per connection every interval if asked.</summary>
    private async Task<int> HoldAsync(CancellationToken cancellationToken)
    {
        var holdEnd = Stopwatch.GetTimestamp() + (long)(settings.HoldFor.TotalSeconds * Stopwatch.Frequency);
        if (settings.Interval is not { } interval || settings.Bytes == 0 || interval <= TimeSpan.Zero)
        {
            await Task.Delay(settings.HoldFor, cancellationToken);
            return 0;
        }

        var rounds = 0;
        using var timer = new PeriodicTimer(interval);
        while (Stopwatch.GetTimestamp() < holdEnd && rounds < 1_000_000)
        {
            var remaining = TimeSpan.FromSeconds((holdEnd - Stopwatch.GetTimestamp()) / (double)Stopwatch.Frequency);
            if (remaining <= TimeSpan.Zero)
            {
                break;
            }

            using var tick = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            tick.CancelAfter(remaining);
            try
            {
                if (!await timer.WaitForNextTickAsync(tick.Token))
                {
                    break;
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                break;
            }

            await ForEachAsync(Enumerable.Range(0, settings.Count), TrafficAsync, cancellationToken);
            rounds++;
        }

        return rounds;
    }

    private async Task TrafficAsync(int index, CancellationToken cancellationToken)
    {
        if (_sockets[index] is not { } socket)
        {
            return;
        }

        var message = SocketIo.Pattern(settings.Bytes, index);
        var failure = await SocketIo.ExchangeAsync(socket, message, new byte[message.Length], settings.Timeout, cancellationToken);
        if (failure is null)
        {
            Interlocked.Increment(ref _trafficOk);
            return;
        }

        Interlocked.Increment(ref _trafficFailed);
        _errors.Add("Traffic:" + failure);
        Drop(index);
    }

    private void Drop(int index)
    {
        _sockets[index]?.Dispose();
        _sockets[index] = null;
    }

    private Task ForEachAsync(IEnumerable<int> indexes, Func<int, CancellationToken, Task> body, CancellationToken cancellationToken) =>
        Parallel.ForEachAsync(
            indexes,
            new ParallelOptions { MaxDegreeOfParallelism = settings.Parallel, CancellationToken = cancellationToken },
            async (index, ct) => await body(index, ct));
}
