using BindProxy.Configuration;

namespace BindProxy.Transport;

/// <summary>
/// A route as the proxy serves it while it runs: the identity its listeners and connections hold,
/// whose definition (<see cref="Model"/>) a reload may replace. A configured route is the root of
/// a family; the routes the proxy opens for it at run time (a Kafka route's broker listeners) are
/// its members, which the root lists and which know their root. A root's new definition reaches
/// its members, and removing the root removes the family.
/// </summary>
internal sealed class ServedRoute
{
    private const int Serving = 0;
    private const int Removed = 1;
    private const int Retired = 2;

    private readonly Lock _lock = new();
    private readonly ServedRoute? _root;
    private RouteModel _model;
    private ServedRoute[] _members = [];
    private int _state;
    private int _connections;

    private ServedRoute(RouteModel model, ServedRoute? root)
    {
        _model = model;
        _root = root;
    }

    /// <summary>The root of a new family, for a configured route.</summary>
    public static ServedRoute Configured(RouteModel model) => new(model, null);

    /// <summary>The root of a route made at run time (the fault API's <c>POST /proxies</c>): not in the file, kept across reloads.</summary>
    public static ServedRoute Runtime(RouteModel model) => new(model, null) { IsRuntime = true };

    /// <summary>True for a route made at run time rather than read from the configuration.</summary>
    public bool IsRuntime { get; private init; }

    /// <summary>The definition new connections get; established ones keep the one they started with.</summary>
    public RouteModel Model => Volatile.Read(ref _model);

    /// <summary>The route's name in logs, metrics and the admin API.</summary>
    public string Name => Model.Name;

    /// <summary>The configured route of this family: this route, or the one that opened it.</summary>
    public ServedRoute Root => _root ?? this;

    public bool IsRoot => _root is null;

    /// <summary>The routes opened at run time for a root (none for a member).</summary>
    public IReadOnlyList<ServedRoute> Members => Volatile.Read(ref _members);

    /// <summary>The root and its members.</summary>
    public IReadOnlyList<ServedRoute> Family => [Root, .. Root.Members];

    /// <summary>
    /// True once the route (or its family) was removed: its listeners are being closed and a
    /// connection that reaches it now is turned away.
    /// </summary>
    public bool IsRemoved => State >= Removed;

    /// <summary>True once the removed route's drain is over: a connection still being set up is reset when it is ready.</summary>
    public bool IsRetired => State >= Retired;

    private int State => Math.Max(Volatile.Read(ref _state), _root is null ? Serving : Volatile.Read(ref _root._state));

    /// <summary>
    /// Adds a member made from <paramref name="model"/> (whose <see cref="RouteModel.Parent"/> is
    /// this route's definition); null when the family was removed meanwhile.
    /// </summary>
    public ServedRoute? AddMember(RouteModel model)
    {
        if (!IsRoot)
        {
            throw new InvalidOperationException($"route {Name} is a member of {Root.Name}; only a configured route has members");
        }

        lock (_lock)
        {
            if (IsRemoved)
            {
                return null;
            }

            var member = new ServedRoute(model, this);
            Volatile.Write(ref _members, [.. _members, member]);
            return member;
        }
    }

    /// <summary>Replaces the definition; a root's members take its new settings and keep their own name, listeners and upstream.</summary>
    public void Update(RouteModel model)
    {
        lock (Root._lock)
        {
            Volatile.Write(ref _model, model);
            foreach (var member in Members)
            {
                Volatile.Write(ref member._model, member.Model.WithParent(model));
            }
        }
    }

    /// <summary>Marks the route removed (a root: with its family); a removed member leaves its root's list.</summary>
    public void Remove()
    {
        lock (Root._lock)
        {
            if (Interlocked.CompareExchange(ref _state, Removed, Serving) == Serving && _root is { } root)
            {
                Volatile.Write(ref root._members, [.. root._members.Where(m => m != this)]);
            }
        }
    }

    /// <summary>
    /// This route's connections, connecting ones included. Kept with the route itself, so a removed
    /// route still draining and a re-added route of the same name never share a count or a limit.
    /// </summary>
    public int Connections => Volatile.Read(ref _connections);

    /// <summary>Counts a new connection against <paramref name="max"/>; false when the route is full. Every true is paired with <see cref="LeaveConnection"/>.</summary>
    public bool TryEnterConnection(int? max)
    {
        if (Interlocked.Increment(ref _connections) <= (max ?? int.MaxValue))
        {
            return true;
        }

        Interlocked.Decrement(ref _connections);
        return false;
    }

    public void LeaveConnection() => Interlocked.Decrement(ref _connections);

    /// <summary>The removed route's drain is over.</summary>
    public void Retire() => Interlocked.Exchange(ref _state, Retired);

    /// <summary>What the route's latest TLS connection to its upstream negotiated, for the status page; null before one.</summary>
    public TlsSession? LastUpstreamTls { get; set; }

    /// <summary>What the route's latest TLS client negotiated on its listener, for the status page; null before one.</summary>
    public TlsSession? LastClientTls { get; set; }

    public override string ToString() => Name;
}
