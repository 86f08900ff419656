namespace BindProxy.Forwarding;

/// <summary>Holds things a drain waits for; the connection registry is one, an Http route's client connections another.</summary>
internal interface IDrainSource
{
    /// <summary>What is open right now.</summary>
    IEnumerable<IDrainable> Open();
}
