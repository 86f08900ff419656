using System.Globalization;
using System.Net;
using Microsoft.Extensions.Logging;

namespace BindProxy.Transport;

/// <summary>
/// The process's open-files limit shared out between proxied connections: the limit, less the
/// descriptors the proxy does not count itself (the runtime's — it keeps every loaded assembly
/// open —, log files, admin and Http connections), less <see cref="Reserve"/> for what those open
/// next. A proxy listener takes one descriptor of it while it listens; a Tcp or Kafka connection
/// takes <see cref="PerConnection"/> (client and upstream socket) from the moment it is accepted
/// until both are closed. A client that would go past it is refused at once, so the process never
/// runs into EMFILE, where the runtime itself fails (a new thread needs descriptors too) and the
/// process dies.
/// </summary>
/// <remarks>
/// The proxy's own descriptors are counted exactly as they are taken and returned. The others are
/// counted at startup and, once the budget is nearly used up, again at most once a second
/// (assemblies load on first use; admin and Http connections come and go), so the room left for
/// connections follows them. That recount reads <c>/proc/self/fd</c>, which takes time in
/// proportion to the descriptors open, so it runs on the thread pool: taking descriptors is
/// constant work, as it runs on the relay loops' threads (accept). Http routes' connections are not
/// refused here: they only make that room smaller.
/// </remarks>
internal sealed partial class DescriptorBudget : IDisposable
{
    /// <summary>Kept free for the runtime (threads, timers, its own sockets), log files and admin connections.</summary>
    public const int Reserve = 64;

    /// <summary>Descriptors one Tcp or Kafka connection holds: the client's socket and the upstream one.</summary>
    public const int PerConnection = 2;

    private static readonly TimeSpan LogInterval = TimeSpan.FromSeconds(10);
    private const long RecountIntervalMs = 1000;

    private readonly ILogger _logger;
    private readonly Func<int>? _countOpen;
    private long _inUse;
    private long _others;
    private long _nextRecountTicks;
    private readonly TimeProvider _time;
    private long _nextLogTicks;
    private long _refusedSinceLog;

    // After a line, what was refused in the interval that followed is said once it ends: a burst
    // of refusals would otherwise leave all but its first client uncounted in the log.
    private readonly Lock _summaryGate = new();
    private ITimer? _summary;
    private string _lastRoute = "";

    /// <param name="limit">The open-files limit (soft, after raising it); null when there is none to go by (then nothing is refused).</param>
    /// <param name="openAtStart">Descriptors open when the budget is made (runtime, log files, listeners made before).</param>
    /// <param name="countOpen">Counts the descriptors the process has open now, for the recount near the top; none: no recount.</param>
    /// <param name="time">The clock of the refusal lines (tests move it by hand).</param>
    public DescriptorBudget(ulong? limit, int openAtStart, ILogger<DescriptorBudget> logger, Func<int>? countOpen = null, TimeProvider? time = null)
    {
        _logger = logger;
        _time = time ?? TimeProvider.System;
        _countOpen = countOpen;
        Limit = limit is { } value ? (long)Math.Min(value, long.MaxValue / 2) : null;
        OpenAtStart = openAtStart;
        _others = openAtStart;
    }

    /// <summary>Raised (on the refusing thread) with the route's name for every client refused for want of descriptors.</summary>
    public event Action<string>? Refused;

    public long? Limit { get; }

    public int OpenAtStart { get; }

    /// <summary>Descriptors connections and listeners may hold together now.</summary>
    public long Capacity => Limit is { } limit ? Math.Max(0, limit - Reserve - Volatile.Read(ref _others)) : long.MaxValue;

    /// <summary>Descriptors taken now.</summary>
    public long InUse => Interlocked.Read(ref _inUse);

    /// <summary>Proxied connections that fit beside <paramref name="listeners"/> listeners.</summary>
    public long ConnectionsBeside(int listeners) => Limit is null ? long.MaxValue : Math.Max(0, (Capacity - listeners) / PerConnection);

    /// <summary>
    /// Takes <paramref name="count"/> descriptors if they fit (constant work: it runs on the relay
    /// loops' threads); every true is paired with a <see cref="Return"/>.
    /// </summary>
    public bool TryTake(int count)
    {
        long inUse = Interlocked.Add(ref _inUse, count);
        long capacity = Capacity;
        if (inUse > capacity - Reserve)
        {
            RequestRecount();
        }

        if (inUse <= capacity)
        {
            return true;
        }

        Interlocked.Add(ref _inUse, -count);
        return false;
    }

    /// <summary>Has the descriptors not taken from the budget counted again on the thread pool, at most once a second.</summary>
    private void RequestRecount()
    {
        long now = NowMs();
        long next = Interlocked.Read(ref _nextRecountTicks);
        if (_countOpen is null || now < next || Interlocked.CompareExchange(ref _nextRecountTicks, now + RecountIntervalMs, next) != next)
        {
            return;
        }

        ThreadPool.UnsafeQueueUserWorkItem(static budget => budget.Recount(), this, preferLocal: false);
    }

    /// <summary>
    /// Counts the descriptors not taken from the budget. What the budget counts but has not opened
    /// yet (a connecting client's upstream socket) makes the count come out low, so it never goes
    /// below the count at startup.
    /// </summary>
    private void Recount()
    {
        long others = _countOpen!() - Interlocked.Read(ref _inUse);
        Volatile.Write(ref _others, Math.Max(OpenAtStart, others));
    }

    /// <summary>Takes <paramref name="count"/> descriptors whether or not they fit (a listener the configuration asks for).</summary>
    public void Take(int count) => Interlocked.Add(ref _inUse, count);

    public void Return(int count) => Interlocked.Add(ref _inUse, -count);

    /// <summary>
    /// Counts a client refused for want of descriptors (the caller resets it) and says so, at most
    /// once per <see cref="LogInterval"/> with the number refused since. <paramref name="system"/>:
    /// the system itself said EMFILE or ENFILE, although the budget had room.
    /// </summary>
    public void Refuse(string route, IPEndPoint? client, bool system = false)
    {
        Refused?.Invoke(route);
        Volatile.Write(ref _lastRoute, route);
        Interlocked.Increment(ref _refusedSinceLog);
        long now = NowMs();
        long next = Interlocked.Read(ref _nextLogTicks);
        if (now < next || Interlocked.CompareExchange(ref _nextLogTicks, now + (long)LogInterval.TotalMilliseconds, next) != next)
        {
            return;
        }

        long count = Interlocked.Exchange(ref _refusedSinceLog, 0);
        string limit = Limit?.ToString(CultureInfo.InvariantCulture) ?? "unknown";
        string who = client?.ToString() ?? "a client";
        if (system)
        {
            Log.OutOfDescriptors(_logger, route, who, limit, InUse, Capacity, count, LogInterval.TotalSeconds);
        }
        else
        {
            Log.BudgetFull(_logger, route, who, InUse / PerConnection, limit, count, LogInterval.TotalSeconds);
        }

        lock (_summaryGate)
        {
            _summary ??= _time.CreateTimer(_ => Summarize(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _summary.Change(LogInterval, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>At the end of an interval that began with a line: the clients refused in it, if any, and then the next interval is watched too.</summary>
    private void Summarize()
    {
        long count = Interlocked.Exchange(ref _refusedSinceLog, 0);
        if (count == 0)
        {
            return;
        }

        Interlocked.Exchange(ref _nextLogTicks, NowMs() + (long)LogInterval.TotalMilliseconds);
        Log.StillRefusing(_logger, Volatile.Read(ref _lastRoute), count, LogInterval.TotalSeconds, Limit?.ToString(CultureInfo.InvariantCulture) ?? "unknown", InUse, Capacity);
        lock (_summaryGate)
        {
            _summary?.Change(LogInterval, Timeout.InfiniteTimeSpan);
        }
    }

    public void Dispose()
    {
        lock (_summaryGate)
        {
            _summary?.Dispose();
            _summary = null;
        }
    }

    private long NowMs() => (long)_time.GetElapsedTime(0).TotalMilliseconds;

    private static partial class Log
    {
        [LoggerMessage(104, LogLevel.Warning, "{Route}: {Refused} more client(s) refused in the last {IntervalSeconds} s for want of descriptors ({InUse} of {Capacity} in use under the open-files limit {Limit})")]
        public static partial void StillRefusing(ILogger logger, string route, long refused, double intervalSeconds, string limit, long inUse, long capacity);

        [LoggerMessage(102, LogLevel.Warning, "{Route}: refused {Client}: the open-files limit {Limit} holds about {Connections} proxied connections and they are all open ({Refused} refused since the last such line; logged at most every {IntervalSeconds} s). Raise the limit to hold more: ulimit -n (up to the hard limit), LimitNOFILE= in a systemd unit, docker run --ulimit nofile=N:N")]
        public static partial void BudgetFull(ILogger logger, string route, string client, long connections, string limit, long refused, double intervalSeconds);

        [LoggerMessage(103, LogLevel.Warning, "{Route}: refused {Client}: the system is out of descriptors (EMFILE/ENFILE) with {InUse} of the proxy's {Capacity} in use under the open-files limit {Limit}; something else holds descriptors ({Refused} refused since the last such line; logged at most every {IntervalSeconds} s). Raise the limit: ulimit -n, LimitNOFILE= in a systemd unit, docker run --ulimit nofile=N:N; for ENFILE, sysctl fs.file-max")]
        public static partial void OutOfDescriptors(ILogger logger, string route, string client, string limit, long inUse, long capacity, long refused, double intervalSeconds);
    }
}
