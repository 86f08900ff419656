namespace BindProxy.Addressing;

/// <summary>Hands out source addresses of a route round-robin; lock-free.</summary>
internal sealed class SourcePool
{
    private long _next = -1;

    public SourcePool(AddressSet addresses) => Addresses = addresses;

    public AddressSet Addresses { get; }

    /// <summary>The index of the next address to start from; callers walk on from it on failure.</summary>
    public long NextIndex() => (long)((ulong)Interlocked.Increment(ref _next) % (ulong)Addresses.Count);
}
