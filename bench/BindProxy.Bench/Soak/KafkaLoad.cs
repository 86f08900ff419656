using System.Diagnostics;
using BindProxy.Bench.Measurement;
using BindProxy.Demo;
using Confluent.Kafka;

namespace BindProxy.Bench.Soak;

/// <summary>
/// The Kafka route's traffic, against librdkafka's mock cluster in this process: an idempotent
/// producer (acks=all) at a fixed rate and a consumer group, both knowing only the proxy's
/// bootstrap address, while every partition's leader moves now and then so the proxy keeps
/// rewriting metadata and KIP-951 leader hints over the whole run.
/// </summary>
internal sealed class KafkaLoad : IDisposable
{
    private const int ExamplesInReport = 10;
    private static readonly TimeSpan PaceTick = TimeSpan.FromMilliseconds(20);
    private static readonly TimeSpan ConsumeWait = TimeSpan.FromMilliseconds(200);

    private readonly SoakSettings _settings;
    private readonly ErrorCounts _errors;
    private readonly ClientLog _log;
    private readonly MockCluster _cluster;
    private readonly KafkaLedger _ledger;
    private readonly List<Member> _members = [];
    private readonly CancellationTokenSource _stopConsuming = new();
    private IProducer<long, string>? _producer;
    private long _behind;
    private int _leaderMoves;
    private int _assignmentsAtStart;

    private KafkaLoad(SoakSettings settings, ErrorCounts errors, ClientLog log, MockCluster cluster)
    {
        _settings = settings;
        _errors = errors;
        _log = log;
        _cluster = cluster;

        // Room for the whole run at the set rate, and a little more; the producer stops if it is ever full.
        var expected = (long)(settings.Duration.TotalSeconds * settings.ProduceRate * 1.05) + 10_000;
        _ledger = new KafkaLedger((int)Math.Min(expected, 20_000_000));
    }

    public LatencyRecorder Produce { get; } = new();

    /// <summary>The broker the Kafka route bootstraps from.</summary>
    public string Bootstrap => _cluster.BrokerAddresses[0];

    public string ClusterAddresses => _cluster.BootstrapServers;

    public KafkaCounters Counters => new(
        _ledger.Counts,
        Interlocked.Read(ref _behind),
        Volatile.Read(ref _leaderMoves),
        Math.Max(0, _members.Sum(m => m.Assignments) - Volatile.Read(ref _assignmentsAtStart)));

    /// <summary>Starts the mock cluster: one topic over every broker, leaders spread, a coordinator that is not the bootstrap broker.</summary>
    public static KafkaLoad Create(SoakSettings settings, ErrorCounts errors, ClientLog log)
    {
        var cluster = MockCluster.Create(SoakSettings.Brokers);
        try
        {
            cluster.CreateTopic(SoakSettings.Topic, SoakSettings.Partitions, SoakSettings.Brokers);
            for (var p = 0; p < SoakSettings.Partitions; p++)
            {
                cluster.SetLeader(SoakSettings.Topic, p, (p % SoakSettings.Brokers) + 1);
            }

            // FindCoordinator then names broker 3, an address the proxy must rewrite.
            cluster.SetCoordinator("group", SoakSettings.Group, SoakSettings.Brokers);
            cluster.SetGroupInitialRebalanceDelay(0);
            return new KafkaLoad(settings, errors, log, cluster);
        }
        catch
        {
            cluster.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Starts the group's members and waits until they share every partition, so no rebalance
    /// (and no redelivery) happens once messages flow. Returns false if that never settles.
    /// </summary>
    public async Task<bool> StartConsumersAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        for (var i = 0; i < _settings.Consumers; i++)
        {
            _members.Add(Member.Start(this, $"soak-consumer-{i + 1}"));
        }

        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        var settledSince = 0L;
        while (Stopwatch.GetTimestamp() < deadline && !cancellationToken.IsCancellationRequested)
        {
            var settled = _members.All(m => m.Assigned > 0) && _members.Sum(m => m.Assigned) == SoakSettings.Partitions;
            if (!settled)
            {
                settledSince = 0;
            }
            else if (settledSince == 0)
            {
                settledSince = Stopwatch.GetTimestamp();
            }
            else if (Stopwatch.GetElapsedTime(settledSince) > TimeSpan.FromSeconds(1))
            {
                Volatile.Write(ref _assignmentsAtStart, _members.Sum(m => m.Assignments));
                return true;
            }

            await Task.Delay(50, cancellationToken);
        }

        return false;
    }

    /// <summary>Produces at the set rate and moves leaders until <paramref name="stop"/> is cancelled.</summary>
    public async Task RunAsync(CancellationToken stop)
    {
        _producer = new ProducerBuilder<long, string>(new ProducerConfig
        {
            BootstrapServers = _settings.KafkaListen.ToString(),
            ClientId = "soak-producer",
            EnableIdempotence = true,
            Acks = Acks.All,
            LingerMs = 5,

            // A message the proxy holds up for a minute is a failure of the run, reported as such,
            // and it bounds the flush at the end.
            MessageTimeoutMs = 60_000,
        }).SetErrorHandler((_, e) => OnClientError("producer", e)).SetLogHandler((_, m) => _log.Write("producer", m)).Build();

        await Task.WhenAll(ProduceAsync(_producer, stop), MoveLeadersAsync(stop));
    }

    /// <summary>
    /// Flushes the producer, waits until the consumers have every acknowledged message, stops them
    /// and compares. Bounded: the flush by the message timeout, the wait by <paramref name="drainTimeout"/>.
    /// </summary>
    public async Task<KafkaVerdict> FinishAsync(TimeSpan drainTimeout)
    {
        var unflushed = 0;
        if (_producer is { } producer)
        {
            unflushed = await Task.Run(() => producer.Flush(TimeSpan.FromSeconds(90)));

            // Closed now, not at Dispose: the proxy is stopped next and must find no client left.
            producer.Dispose();
            _producer = null;
        }

        var deadline = Stopwatch.GetTimestamp() + (long)(drainTimeout.TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < deadline)
        {
            var counts = _ledger.Counts;
            if (counts.AckedAndConsumed >= counts.Acked)
            {
                break;
            }

            await Task.Delay(100, CancellationToken.None);
        }

        // Give a redelivery a moment to show up before counting.
        await Task.Delay(500, CancellationToken.None);
        await _stopConsuming.CancelAsync();
        foreach (var member in _members)
        {
            await member.StopAsync(TimeSpan.FromSeconds(30));
        }

        var final = Counters;
        var check = _ledger.Check(ExamplesInReport);
        return new KafkaVerdict(final, check, unflushed, _ledger.Counts.Produced >= _ledger.Capacity);
    }

    public void Dispose()
    {
        _stopConsuming.Cancel();
        foreach (var member in _members)
        {
            member.Dispose();
        }

        _producer?.Dispose();
        _cluster.Dispose();
        _stopConsuming.Dispose();
    }

    private async Task ProduceAsync(IProducer<long, string> producer, CancellationToken stop)
    {
        if (_settings.ProduceRate == 0)
        {
            return;
        }

        // At most ten seconds of messages unacknowledged; past that the schedule moves on without
        // them and they are counted as behind, so a stall shows up rather than a burst after it.
        var maxInFlight = Math.Max(1_000, _settings.ProduceRate * 10);
        var started = Stopwatch.GetTimestamp();
        long sequence = 0;
        long scheduled = 0;
        using var timer = new PeriodicTimer(PaceTick);
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                var due = (long)(Stopwatch.GetElapsedTime(started).TotalSeconds * _settings.ProduceRate);
                for (; scheduled < due; scheduled++)
                {
                    var counts = _ledger.Counts;
                    if (sequence >= _ledger.Capacity || counts.Produced - counts.Acked - counts.Failed >= maxInFlight)
                    {
                        Interlocked.Increment(ref _behind);
                        continue;
                    }

                    ProduceOne(producer, sequence++);
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    private void ProduceOne(IProducer<long, string> producer, long sequence)
    {
        _ledger.Produced(sequence);
        try
        {
            producer.Produce(
                SoakSettings.Topic,
                new Message<long, string> { Key = sequence, Value = KafkaLedger.ValueOf(sequence, SoakSettings.ValueSize) },
                OnDelivery);
        }
        catch (KafkaException e)
        {
            _ledger.Failed(sequence);
            _errors.Add("kafka produce " + e.Error.Code);
        }
    }

    private void OnDelivery(DeliveryReport<long, string> report)
    {
        if (report.Error.IsError || report.Status != PersistenceStatus.Persisted)
        {
            _ledger.Failed(report.Message.Key);
            _errors.Add($"kafka delivery {report.Error.Code} ({report.Status})");
            return;
        }

        Produce.RecordTicks(_ledger.Acknowledged(report.Message.Key, report.Partition.Value, report.Offset.Value));
    }

    private async Task MoveLeadersAsync(CancellationToken stop)
    {
        if (_settings.LeaderMoveEvery is not { } every || every <= TimeSpan.Zero)
        {
            return;
        }

        using var timer = new PeriodicTimer(every);
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                var round = Volatile.Read(ref _leaderMoves) + 1;
                for (var p = 0; p < SoakSettings.Partitions; p++)
                {
                    _cluster.SetLeader(SoakSettings.Topic, p, ((p + round) % SoakSettings.Brokers) + 1);
                }

                Interlocked.Increment(ref _leaderMoves);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    private void OnClientError(string client, Error error)
    {
        _errors.Add($"kafka {client} {error.Code}{(error.IsFatal ? " (fatal)" : string.Empty)}");
        _log.Write(client, new LogMessage(client, SyslogLevel.Error, "error", error.Reason));
    }

    /// <summary>One group member polling on its own thread.</summary>
    private sealed class Member : IDisposable
    {
        private readonly IConsumer<long, string> _consumer;
        private readonly Task _loop;
        private int _assigned;
        private int _assignments;

        private Member(KafkaLoad load, string clientId)
        {
            _consumer = new ConsumerBuilder<long, string>(new ConsumerConfig
            {
                BootstrapServers = load._settings.KafkaListen.ToString(),
                ClientId = clientId,
                GroupId = SoakSettings.Group,
                AutoOffsetReset = AutoOffsetReset.Earliest,
                EnableAutoCommit = true,
                FetchWaitMaxMs = 100,

                // A joining member waits for every other member to rejoin, up to the session
                // timeout: 10 s keeps the start short and still rides out a busy machine.
                SessionTimeoutMs = 10_000,
                HeartbeatIntervalMs = 1_000,
            })
                .SetErrorHandler((_, e) => load.OnClientError(clientId, e))
                .SetLogHandler((_, m) => load._log.Write(clientId, m))
                .SetPartitionsAssignedHandler((_, partitions) =>
                {
                    Volatile.Write(ref _assigned, partitions.Count);
                    Interlocked.Increment(ref _assignments);
                })
                .SetPartitionsRevokedHandler((_, _) => Volatile.Write(ref _assigned, 0))
                .SetPartitionsLostHandler((_, _) => Volatile.Write(ref _assigned, 0))
                .Build();
            _consumer.Subscribe(SoakSettings.Topic);
            var stop = load._stopConsuming.Token;
            _loop = Task.Factory.StartNew(() => Poll(load, stop), stop, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }

        /// <summary>Partitions assigned now.</summary>
        public int Assigned => Volatile.Read(ref _assigned);

        /// <summary>Assignments received so far (one per rebalance this member took part in).</summary>
        public int Assignments => Volatile.Read(ref _assignments);

        public static Member Start(KafkaLoad load, string clientId) => new(load, clientId);

        public async Task StopAsync(TimeSpan timeout)
        {
            try
            {
                await _loop.WaitAsync(timeout);
            }
            catch (TimeoutException)
            {
                // Disposed below anyway; a member stuck in Close is reported through the client log.
            }
        }

        public void Dispose()
        {
            // A member still stuck in Close is left to the process exit: disposing it under the
            // polling thread would crash in native code.
            if (_loop.IsCompleted)
            {
                _consumer.Dispose();
            }
        }

        private void Poll(KafkaLoad load, CancellationToken stop)
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    if (_consumer.Consume(ConsumeWait) is { Message: { } message } result)
                    {
                        load._ledger.Consumed(message.Key, message.Value, result.Partition.Value, result.Offset.Value, SoakSettings.ValueSize);
                    }
                }
                catch (ConsumeException e)
                {
                    load._errors.Add("kafka consume " + e.Error.Code);
                }
            }

            try
            {
                _consumer.Close();
            }
            catch (KafkaException e)
            {
                load._errors.Add("kafka consumer close " + e.Error.Code);
            }
        }
    }
}

/// <summary>Cumulative Kafka counts for a sample; <c>Rebalances</c> counts assignments after the group first settled.</summary>
internal readonly record struct KafkaCounters(LedgerCounts Ledger, long Behind, int LeaderMoves, int Rebalances);

/// <summary>The Kafka half of the end-of-run check.</summary>
internal sealed record KafkaVerdict(KafkaCounters Counters, LedgerCheck Check, int Unflushed, bool LedgerFull)
{
    public IEnumerable<string> Failures()
    {
        var c = Counters.Ledger;
        if (c.Failed > 0)
        {
            yield return $"{c.Failed} message(s) failed to produce";
        }

        if (Unflushed > 0 || Check.Unresolved > 0)
        {
            yield return $"{Math.Max(Unflushed, Check.Unresolved)} message(s) never acknowledged nor failed";
        }

        if (Check.Lost > 0)
        {
            yield return $"{Check.Lost} acknowledged message(s) never consumed (e.g. {string.Join(", ", Check.LostExamples)})";
        }

        if (Check.Duplicated > 0 || Check.Misplaced > 0)
        {
            yield return $"{Check.Duplicated} message(s) in the log twice, {Check.Misplaced} at another offset than acknowledged (e.g. {string.Join(", ", Check.DuplicatedExamples)})";
        }

        if (Check.Redelivered > 0)
        {
            yield return $"{Check.Redelivered} message(s) delivered to the group twice";
        }

        if (c.Corrupt > 0 || c.Unknown > 0)
        {
            yield return $"{c.Corrupt} message(s) consumed with the wrong content, {c.Unknown} never produced";
        }

        if (c.Acked == 0 && c.Produced > 0)
        {
            yield return "no message was acknowledged";
        }
    }
}
