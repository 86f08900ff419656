namespace BindProxy.Kafka.Conversation;

/// <summary>
/// The last exchanges of one client (client.id) of one Kafka route family, oldest first: a ring of
/// at most <see cref="KafkaConversations.RecordsPerClient"/> records and
/// <see cref="KafkaConversations.BytesPerClient"/> bytes (the oldest go first). It outlives the
/// client's connections, so what a client that exited or crashed said last can still be read.
/// </summary>
internal sealed class ClientConversation
{
    private readonly KafkaExchange?[] _ring;
    private readonly Lock _lock = new();
    private readonly KafkaConversations _owner;
    private readonly int _maxBytes;
    private int _start;
    private int _count;
    private long _bytes;
    private long _lastActive;

    public ClientConversation(KafkaConversations owner, string root, string client, int capacity, int maxBytes)
    {
        _owner = owner;
        Root = root;
        Client = client;
        _ring = new KafkaExchange?[capacity];
        _maxBytes = maxBytes;
        _lastActive = Environment.TickCount64;
    }

    /// <summary>The route family's root route.</summary>
    public string Root { get; }

    /// <summary>The client.id, or "-" for requests without one.</summary>
    public string Client { get; }

    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>Dropped to keep the total budget: new records go to a new ring.</summary>
    public bool IsRemoved { get; private set; }

    /// <summary>When (<see cref="Environment.TickCount64"/>) the client last made a request.</summary>
    public long LastActive => Interlocked.Read(ref _lastActive);

    /// <summary>Adds a record, dropping the oldest ones when the ring is full or over its bytes.</summary>
    public void Add(KafkaExchange exchange)
    {
        long delta;
        lock (_lock)
        {
            long before = _bytes;
            if (_count == _ring.Length)
            {
                DropOldest();
            }

            _ring[(_start + _count) % _ring.Length] = exchange;
            _count++;
            exchange.AccountedBytes = exchange.EstimatedBytes;
            _bytes += exchange.AccountedBytes;
            TrimToBudget();
            delta = _bytes - before;
        }

        Interlocked.Exchange(ref _lastActive, Environment.TickCount64);
        _owner.Accounted(delta);
    }

    /// <summary>A record's bodies grew (its response came): recount it, and trim.</summary>
    public void Resized(KafkaExchange exchange)
    {
        long delta;
        lock (_lock)
        {
            long before = _bytes;
            int now = exchange.EstimatedBytes;

            // A record already dropped is not counted any more.
            if (exchange.AccountedBytes > 0)
            {
                _bytes += now - exchange.AccountedBytes;
                exchange.AccountedBytes = now;
            }

            TrimToBudget();
            delta = _bytes - before;
        }

        _owner.Accounted(delta);
    }

    /// <summary>The records, oldest first.</summary>
    public KafkaExchange[] Snapshot()
    {
        lock (_lock)
        {
            var copy = new KafkaExchange[_count];
            for (int i = 0; i < _count; i++)
            {
                copy[i] = _ring[(_start + i) % _ring.Length]!;
            }

            return copy;
        }
    }

    /// <summary>Empties the ring (its client is dropped to keep the total budget); returns the bytes freed.</summary>
    public long Clear()
    {
        lock (_lock)
        {
            IsRemoved = true;
            long freed = _bytes;
            while (_count > 0)
            {
                DropOldest();
            }

            _bytes = 0;
            return freed;
        }
    }

    private void TrimToBudget()
    {
        while (_bytes > _maxBytes && _count > 1)
        {
            DropOldest();
        }
    }

    private void DropOldest()
    {
        var oldest = _ring[_start]!;
        _ring[_start] = null;
        _start = (_start + 1) % _ring.Length;
        _count--;
        _bytes -= oldest.AccountedBytes;
        oldest.AccountedBytes = 0;
    }
}
