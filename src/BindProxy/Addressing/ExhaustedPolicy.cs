namespace BindProxy.Addressing;

/// <summary>What to do when a new client finds every address of the pool taken.</summary>
internal enum ExhaustedPolicy
{
    /// <summary>Share the address with the fewest clients (logged once).</summary>
    Share,

    /// <summary>Refuse the new client's connections.</summary>
    Refuse,
}
