namespace BindProxy.Forwarding;

/// <summary>A step on the way from an accepted client to a running relay.</summary>
internal enum HandoffStep
{
    /// <summary>The upstream socket is connected; no relay holds the two sockets yet.</summary>
    Connected,

    /// <summary>The relay holds both sockets and is in the registry; it has not started.</summary>
    Registered,
}

/// <summary>
/// Lets a test make the handoff fail at a <see cref="HandoffStep"/> (by throwing from
/// <see cref="Inject"/>), to show that every exception path releases what it holds. The proxy
/// never registers one: the handler then skips the steps.
/// </summary>
internal sealed class HandoffFaults
{
    public Action<HandoffStep>? Inject { get; set; }

    public void At(HandoffStep step) => Inject?.Invoke(step);
}
