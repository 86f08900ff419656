using System.Diagnostics;
using System.Globalization;

namespace BindProxy.Bench.Soak;

/// <summary>
/// Every message of the run by sequence number (its key): when it was produced, where it was
/// acknowledged, and how often and where it was consumed. Sized once for the whole run, so the
/// check at the end compares every acknowledged message with what the consumers saw.
/// </summary>
internal sealed class KafkaLedger(int capacity)
{
    private const byte StateInFlight = 1;
    private const byte StateAcked = 2;
    private const byte StateFailed = 3;

    private readonly Lock _lock = new();
    private readonly byte[] _state = new byte[capacity];
    private readonly long[] _producedAt = new long[capacity];
    private readonly int[] _ackPartition = new int[capacity];
    private readonly long[] _ackOffset = new long[capacity];
    private readonly int[] _consumedCount = new int[capacity];
    private readonly int[] _firstPartition = new int[capacity];
    private readonly long[] _firstOffset = new long[capacity];

    // Consumed again at another (partition, offset) than the first time: a second copy in the log.
    private readonly bool[] _consumedElsewhere = new bool[capacity];
    private long _produced;
    private long _acked;
    private long _failed;
    private long _consumed;
    private long _deliveries;
    private long _ackedAndConsumed;
    private long _corrupt;
    private long _unknown;

    public int Capacity => capacity;

    /// <summary>The value written for a sequence number; the consumers compare what they read with it.</summary>
    public static string ValueOf(long sequence, int size)
    {
        var head = string.Create(CultureInfo.InvariantCulture, $"soak-{sequence:D10}-");
        return head.PadRight(Math.Max(size, head.Length), (char)('a' + (sequence % 26)));
    }

    public LedgerCounts Counts
    {
        get
        {
            lock (_lock)
            {
                return new LedgerCounts(_produced, _acked, _failed, _consumed, _deliveries, _ackedAndConsumed, _corrupt, _unknown);
            }
        }
    }

    public void Produced(long sequence)
    {
        lock (_lock)
        {
            _state[sequence] = StateInFlight;
            _producedAt[sequence] = Stopwatch.GetTimestamp();
            _produced++;
        }
    }

    /// <summary>Records the acknowledgement; returns the produce latency in Stopwatch ticks.</summary>
    public long Acknowledged(long sequence, int partition, long offset)
    {
        lock (_lock)
        {
            _state[sequence] = StateAcked;
            _ackPartition[sequence] = partition;
            _ackOffset[sequence] = offset;
            _acked++;
            if (_consumedCount[sequence] > 0)
            {
                _ackedAndConsumed++;
            }

            return Stopwatch.GetTimestamp() - _producedAt[sequence];
        }
    }

    /// <summary>A delivery report with an error, or a Produce call that threw.</summary>
    public void Failed(long sequence)
    {
        lock (_lock)
        {
            _state[sequence] = StateFailed;
            _failed++;
        }
    }

    public void Consumed(long sequence, string? value, int partition, long offset, int valueSize)
    {
        // Built outside the lock: the comparison is the only part that needs no shared state.
        var intact = sequence >= 0 && sequence < capacity && value == ValueOf(sequence, valueSize);
        lock (_lock)
        {
            _deliveries++;
            if (sequence < 0 || sequence >= capacity || _state[sequence] == 0)
            {
                _unknown++;
                return;
            }

            if (!intact)
            {
                _corrupt++;
            }

            if (_consumedCount[sequence]++ == 0)
            {
                _firstPartition[sequence] = partition;
                _firstOffset[sequence] = offset;
                _consumed++;
                if (_state[sequence] == StateAcked)
                {
                    _ackedAndConsumed++;
                }
            }
            else if (_firstPartition[sequence] != partition || _firstOffset[sequence] != offset)
            {
                _consumedElsewhere[sequence] = true;
            }
        }
    }

    /// <summary>Compares every message produced so far with what was consumed.</summary>
    public LedgerCheck Check(int examples)
    {
        lock (_lock)
        {
            long lost = 0, duplicated = 0, misplaced = 0, redelivered = 0, unresolved = 0;
            var lostExamples = new List<long>();
            var duplicatedExamples = new List<long>();
            for (long s = 0; s < _produced && s < capacity; s++)
            {
                switch (_state[s])
                {
                    case StateInFlight:
                        unresolved++;
                        continue;
                    case StateAcked when _consumedCount[s] == 0:
                        lost++;
                        AddExample(lostExamples, s, examples);
                        continue;
                    case StateAcked when _firstPartition[s] != _ackPartition[s] || _firstOffset[s] != _ackOffset[s]:
                        misplaced++;
                        AddExample(duplicatedExamples, s, examples);
                        break;
                    default:
                        break;
                }

                if (_consumedElsewhere[s])
                {
                    duplicated++;
                    AddExample(duplicatedExamples, s, examples);
                }
                else if (_consumedCount[s] > 1)
                {
                    redelivered++;
                }
            }

            return new LedgerCheck(unresolved, lost, duplicated, misplaced, redelivered, [.. lostExamples], [.. duplicatedExamples]);
        }
    }

    private static void AddExample(List<long> list, long sequence, int examples)
    {
        if (list.Count < examples)
        {
            list.Add(sequence);
        }
    }
}

/// <summary>Cumulative counts: messages produced, acknowledged, failed, consumed (distinct) and every delivery to a consumer.</summary>
internal readonly record struct LedgerCounts(
    long Produced,
    long Acked,
    long Failed,
    long Consumed,
    long Deliveries,
    long AckedAndConsumed,
    long Corrupt,
    long Unknown);

/// <summary>
/// The end-of-run comparison. <c>Duplicated</c>: one message found at two places in the log.
/// <c>Misplaced</c>: consumed at another offset than the one acknowledged. <c>Redelivered</c>: the
/// same record handed to the group twice (a rebalance before a commit).
/// </summary>
internal sealed record LedgerCheck(
    long Unresolved,
    long Lost,
    long Duplicated,
    long Misplaced,
    long Redelivered,
    long[] LostExamples,
    long[] DuplicatedExamples);
