namespace BindProxy.Faults;

/// <summary>
/// The toxics of one route (a toxiproxy "proxy") and whether it is enabled. The list is replaced
/// whole on every change, so a connection reads it with one volatile load per chunk of data and
/// sees a change at its next chunk.
/// </summary>
/// <param name="changed">Told after each change of the list (under the route's lock, so in order): the route's faults.</param>
internal sealed class RouteFaults(string route, Action<RouteFaults>? changed = null) : IDisposable
{
    private readonly Lock _lock = new();
    private Toxic[] _toxics = [];
    private bool _disabled;
    private string? _fileDefinition;
    private CancellationTokenSource _changed = new();

    public string Route { get; } = route;

    public IReadOnlyList<Toxic> Toxics => Volatile.Read(ref _toxics);

    /// <summary>The list as it is now (never changed in place).</summary>
    internal Toxic[] Snapshot => Volatile.Read(ref _toxics);

    public bool HasToxics => Volatile.Read(ref _toxics).Length > 0;

    public bool Enabled => !Volatile.Read(ref _disabled);

    /// <summary>Cancelled at the next change of the list: a connection waiting for data looks again (a toxic with a timer starts at once).</summary>
    public CancellationToken ChangeToken => Volatile.Read(ref _changed).Token;

    /// <summary>Sets enabled; true when that changed it.</summary>
    public bool SetEnabled(bool enabled)
    {
        lock (_lock)
        {
            if (_disabled != enabled)
            {
                return false;
            }

            Volatile.Write(ref _disabled, !enabled);
            return true;
        }
    }

    private void Publish(Toxic[] toxics)
    {
        Volatile.Write(ref _toxics, toxics);

        // Not disposed: a waiting connection may still be linking to it.
        Interlocked.Exchange(ref _changed, new CancellationTokenSource()).Cancel();
        changed?.Invoke(this);
    }

    public void Dispose() => Volatile.Read(ref _changed).Dispose();

    public Toxic? Find(string name) => Array.Find(Volatile.Read(ref _toxics), t => t.Name == name);

    /// <summary>Adds <paramref name="toxic"/>; false when the route has one of that name.</summary>
    public bool TryAdd(Toxic toxic)
    {
        lock (_lock)
        {
            if (Find(toxic.Name) is not null)
            {
                return false;
            }

            Publish([.. _toxics, toxic]);
            return true;
        }
    }

    /// <summary>Replaces the toxic of the same name; false when there is none.</summary>
    public bool TryReplace(Toxic toxic)
    {
        lock (_lock)
        {
            int at = Array.FindIndex(_toxics, t => t.Name == toxic.Name);
            if (at < 0)
            {
                return false;
            }

            var next = (Toxic[])_toxics.Clone();
            next[at] = toxic;
            Publish(next);
            return true;
        }
    }

    public Toxic? Remove(string name)
    {
        lock (_lock)
        {
            var toxic = Find(name);
            if (toxic is not null)
            {
                Publish([.. _toxics.Where(t => t != toxic)]);
            }

            return toxic;
        }
    }

    /// <summary>
    /// Makes <paramref name="fromFile"/> the route's toxics from the configuration file when
    /// <paramref name="definition"/> (their text in the file) differs from the one applied last;
    /// null when it does not. The file's toxics no longer given are removed, those given replace
    /// the toxic of their name (one added through the API too), the rest are added after the
    /// present ones; toxics added through the API under other names stay. One change: a
    /// connection sees the old list or the new one.
    /// </summary>
    public IReadOnlyList<FileToxicChange>? ApplyFile(IReadOnlyList<Toxic> fromFile, string? definition)
    {
        lock (_lock)
        {
            if (definition == _fileDefinition)
            {
                return null;
            }

            _fileDefinition = definition;
            var changes = new List<FileToxicChange>();
            var given = fromFile.ToDictionary(t => t.Name, StringComparer.Ordinal);
            var next = new List<Toxic>();
            foreach (var present in _toxics)
            {
                if (given.Remove(present.Name, out var toxic))
                {
                    next.Add(toxic);
                    if (!present.IsFromFile || present.Describe() != toxic.Describe())
                    {
                        changes.Add(new FileToxicChange(toxic, present));
                    }
                }
                else if (present.IsFromFile)
                {
                    changes.Add(new FileToxicChange(null, present));
                }
                else
                {
                    next.Add(present);
                }
            }

            foreach (var toxic in fromFile.Where(t => given.ContainsKey(t.Name)))
            {
                next.Add(toxic);
                changes.Add(new FileToxicChange(toxic, null));
            }

            if (changes.Count > 0)
            {
                Publish([.. next]);
            }

            return changes;
        }
    }

    /// <summary>Removes every toxic; those removed.</summary>
    public IReadOnlyList<Toxic> Clear()
    {
        lock (_lock)
        {
            var removed = _toxics;
            Publish([]);
            return removed;
        }
    }
}

/// <summary>One toxic a change of the configuration file's <c>Faults</c> made: added (no <paramref name="Before"/>), changed or taken over from the API, or removed (no <paramref name="After"/>).</summary>
internal sealed record FileToxicChange(Toxic? After, Toxic? Before);
