using System.Collections.Concurrent;
using System.Threading.Channels;
using BindProxy.Forwarding;
using BindProxy.Kafka.Protocol;

namespace BindProxy.Kafka.Conversation;

/// <summary>
/// The conversations of every Kafka route: per route family and client.id, a ring of the last
/// exchanges (<see cref="ClientConversation"/>), readers that follow new ones as they complete
/// (<see cref="Watch"/>), and the rule that decides whether bodies are decoded: while someone
/// watches the client, or always when the route says so (<c>DecodeBodies</c>).
/// </summary>
/// <remarks>
/// Memory is fixed: at most <see cref="RecordsPerClient"/> records and <see cref="BytesPerClient"/>
/// bytes per client, and <see cref="TotalBytes"/> for all clients together; past that the least
/// recently active client's ring is dropped first. A record without bodies costs
/// <see cref="KafkaExchange.HeaderBytes"/> bytes; decoded bodies are bounded by
/// <see cref="ExchangeBody"/>'s limits.
/// </remarks>
internal sealed class KafkaConversations(ProxyMetrics? metrics = null)
{
    public const int RecordsPerClient = 512;
    public const int BytesPerClient = 256 * 1024;
    public const long TotalBytes = 32L * 1024 * 1024;

    /// <summary>Exchanges a follower may fall behind by; older ones are dropped and counted.</summary>
    public const int FollowBacklog = 4096;

    private readonly ConcurrentDictionary<(string Root, string Client), ClientConversation> _clients = new();
    private readonly ConcurrentDictionary<string, TopicNames> _names = new(StringComparer.Ordinal);
    private readonly Lock _watchLock = new();
    private volatile ExchangeWatch[] _watches = [];
    private long _bytes;
    private long _nextId;

    /// <summary>Bytes the rings hold now.</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>The client conversations held now.</summary>
    public IReadOnlyCollection<ClientConversation> Clients => [.. _clients.Values];

    /// <summary>A new connection's record keeper.</summary>
    public ConnectionExchanges Open(string root, string route, System.Net.IPEndPoint client, System.Net.IPEndPoint? source, string broker, bool decodeAlways) =>
        new(this, root, route, client, source, broker, decodeAlways, _names.GetOrAdd(root, _ => new TopicNames()));

    /// <summary>True while a reader watches exchanges that <paramref name="clientId"/> on <paramref name="route"/> may make: their bodies are decoded.</summary>
    public bool IsWatched(string root, string route, string? clientId)
    {
        var watches = _watches;
        if (watches.Length == 0)
        {
            return false;
        }

        long now = Environment.TickCount64;
        foreach (var watch in watches)
        {
            if (!watch.IsExpired(now) && watch.Filter.MayMatch(root, route, clientId))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Follows the exchanges <paramref name="filter"/> matches as they complete (answered, sent
    /// without a response expected, or left unanswered by a closed connection), until disposed.
    /// Watching decodes the bodies of the clients it may match.
    /// </summary>
    public ExchangeWatch Watch(ExchangeFilter filter)
    {
        var watch = new ExchangeWatch(this, filter, expiresTicks: long.MaxValue);
        AddWatch(watch);
        return watch;
    }

    /// <summary>
    /// Watches <paramref name="filter"/>'s clients for <paramref name="duration"/> without following
    /// (the status page's panel, renewed by each poll): their bodies are decoded meanwhile.
    /// </summary>
    public void WatchFor(ExchangeFilter filter, TimeSpan duration)
    {
        long until = Environment.TickCount64 + (long)duration.TotalMilliseconds;
        foreach (var watch in _watches)
        {
            if (watch.IsLease && watch.Filter == filter)
            {
                watch.Renew(until);
                return;
            }
        }

        AddWatch(new ExchangeWatch(this, filter, until));
    }

    /// <summary>The recorded exchanges <paramref name="filter"/> matches, oldest first, at most the last <paramref name="limit"/>.</summary>
    public IReadOnlyList<KafkaExchange> Query(ExchangeFilter filter, int limit)
    {
        var matches = new List<KafkaExchange>();
        foreach (var conversation in _clients.Values)
        {
            if (filter.Client is not null && !string.Equals(filter.Client, conversation.Client, StringComparison.Ordinal))
            {
                continue;
            }

            foreach (var exchange in conversation.Snapshot())
            {
                if (filter.Matches(exchange))
                {
                    matches.Add(exchange);
                }
            }
        }

        matches.Sort((a, b) => a.Id.CompareTo(b.Id));
        return matches.Count > limit ? matches[^limit..] : matches;
    }

    internal ClientConversation RingFor(string root, string client) =>
        _clients.GetOrAdd((root, client), key => new ClientConversation(this, key.Root, key.Client, RecordsPerClient, BytesPerClient));

    internal long NextId() => Interlocked.Increment(ref _nextId);

    /// <summary>A ring's bytes changed by <paramref name="delta"/>; over the total, the least recently active clients go.</summary>
    internal void Accounted(long delta)
    {
        if (Interlocked.Add(ref _bytes, delta) <= TotalBytes)
        {
            return;
        }

        foreach (var conversation in _clients.Values.OrderBy(c => c.LastActive).ToList())
        {
            if (Interlocked.Read(ref _bytes) <= TotalBytes)
            {
                break;
            }

            if (_clients.TryRemove(new KeyValuePair<(string, string), ClientConversation>((conversation.Root, conversation.Client), conversation)))
            {
                Interlocked.Add(ref _bytes, -conversation.Clear());
            }
        }
    }

    /// <summary>An exchange is complete: counted, and handed to the readers that follow it.</summary>
    internal void Completed(KafkaExchange exchange)
    {
        metrics?.KafkaExchange(exchange.Connection.Route, KafkaApis.NameOf(exchange.ApiKey), ErrorLabel(exchange), exchange.Latency);
        var watches = _watches;
        foreach (var watch in watches)
        {
            if (!watch.IsLease && watch.Filter.Matches(exchange))
            {
                watch.Offer(exchange);
            }
        }
    }

    /// <summary>The metric's <c>error</c> label: an error name from the fixed table, none, unanswered, or undecoded (nobody watched).</summary>
    internal static string ErrorLabel(KafkaExchange exchange) => exchange.State switch
    {
        ExchangeState.Unanswered => "unanswered",
        ExchangeState.NoResponse => "none",
        _ when exchange.Response is { } body => body.HasError ? (KafkaErrors.TryGet(body.FirstError, out var error) ? error.Name : "unknown_code") : "none",
        _ => "undecoded",
    };

    internal void Remove(ExchangeWatch watch)
    {
        lock (_watchLock)
        {
            _watches = [.. _watches.Where(w => w != watch)];
        }
    }

    private void AddWatch(ExchangeWatch watch)
    {
        lock (_watchLock)
        {
            long now = Environment.TickCount64;
            _watches = [.. _watches.Where(w => !w.IsExpired(now)), watch];
        }
    }
}

/// <summary>A reader of new exchanges (<see cref="KafkaConversations.Watch"/>), or a timed lease that only asks for bodies to be decoded.</summary>
internal sealed class ExchangeWatch : IDisposable
{
    private readonly KafkaConversations _owner;
    private readonly Channel<KafkaExchange>? _channel;
    private long _expiresTicks;
    private long _dropped;

    internal ExchangeWatch(KafkaConversations owner, ExchangeFilter filter, long expiresTicks)
    {
        _owner = owner;
        Filter = filter;
        _expiresTicks = expiresTicks;
        if (expiresTicks == long.MaxValue)
        {
            _channel = Channel.CreateBounded<KafkaExchange>(new BoundedChannelOptions(KafkaConversations.FollowBacklog)
            {
                FullMode = BoundedChannelFullMode.DropOldest,
                SingleReader = true,
            }, _ => Interlocked.Increment(ref _dropped));
        }
    }

    public ExchangeFilter Filter { get; }

    public bool IsLease => _channel is null;

    /// <summary>Exchanges dropped because the reader fell more than <see cref="KafkaConversations.FollowBacklog"/> behind.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    public ChannelReader<KafkaExchange> Reader => _channel?.Reader ?? throw new InvalidOperationException("A lease has no reader.");

    public bool IsExpired(long now) => now > Interlocked.Read(ref _expiresTicks);

    public void Dispose()
    {
        _channel?.Writer.TryComplete();
        _owner.Remove(this);
    }

    internal void Renew(long until) => Interlocked.Exchange(ref _expiresTicks, until);

    internal void Offer(KafkaExchange exchange) => _channel?.Writer.TryWrite(exchange);
}
