using System.Diagnostics;

namespace BindProxy.Faults;

/// <summary>
/// One direction of one connection as its route's toxics see it: which toxics apply to it (each
/// toxic's <see cref="Toxic.Toxicity"/> is rolled once per connection, when the toxic first meets
/// it; a toxic aimed elsewhere by its match never applies), when each started on it, and the bytes each has let through. Used by that direction's pump alone.
/// </summary>
internal sealed class ToxicLink(RouteFaults faults, ToxicStream stream, ConnectionIdentity who)
{
    private readonly Dictionary<string, State> _states = new(StringComparer.Ordinal);
    private readonly List<Active> _active = [];
    private Toxic[]? _seen;

    public RouteFaults Faults => faults;

    public ToxicStream Stream => stream;

    /// <summary>Tells each toxic that applies, as it is counted (metrics).</summary>
    public Action<Toxic>? Applied { get; init; }

    /// <summary>The toxics of this direction that apply to this connection now, in the order they were added.</summary>
    public IReadOnlyList<Active> Current()
    {
        var toxics = faults.Snapshot;
        if (ReferenceEquals(toxics, _seen))
        {
            return _active;
        }

        _seen = toxics;
        _active.Clear();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var toxic in toxics)
        {
            if (toxic.Stream != stream || toxic.Kind.IsKafka)
            {
                continue;
            }

            names.Add(toxic.Name);
            if (!_states.TryGetValue(toxic.Name, out var state))
            {
                bool aimed = toxic.Match is not { } match || match.Matches(who);
                state = new State(aimed && (Random.Shared.NextDouble() < toxic.Toxicity || toxic.Toxicity >= 1), Stopwatch.GetTimestamp());
                _states[toxic.Name] = state;
                if (state.Applies)
                {
                    Applied?.Invoke(toxic);
                }
            }

            if (state.Applies)
            {
                _active.Add(new Active(toxic, state));
            }
        }

        foreach (var gone in _states.Keys.Where(n => !names.Contains(n)).ToList())
        {
            _states.Remove(gone);
        }

        return _active;
    }

    /// <summary>A toxic that applies, with its state on this connection.</summary>
    internal readonly record struct Active(Toxic Toxic, State State)
    {
        /// <summary>When the toxic's <c>timeout</c> attribute runs out on this connection (timeout, reset_peer); null when it has none.</summary>
        public long? Deadline() =>
            (Toxic.Kind == ToxicKind.Timeout || Toxic.Kind == ToxicKind.ResetPeer) && Toxic["timeout"] is > 0 and var ms
                ? State.Started + (ms * Stopwatch.Frequency / 1000)
                : null;
    }

    /// <summary>A toxic on this connection: whether it applies, when it met it, and the bytes it let through (limit_data).</summary>
    internal sealed class State(bool applies, long started)
    {
        public bool Applies { get; } = applies;

        public long Started { get; } = started;

        public long Passed { get; set; }
    }
}
