namespace BindProxy.Forwarding;

/// <summary>
/// Lets a test make the handoff fail at a <see cref="HandoffStep"/> (by throwing from
/// <see cref="Inject"/>), to show that every exception path releases what it holds. The proxy
/// never registers one: <see cref="RelayForwarder"/> then skips the steps.
/// </summary>
internal sealed class HandoffFaults
{
    public Action<HandoffStep>? Inject { get; set; }

    public void At(HandoffStep step) => Inject?.Invoke(step);
}
