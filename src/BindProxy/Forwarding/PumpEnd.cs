namespace BindProxy.Forwarding;

/// <summary>How one direction of a proxied connection ended.</summary>
internal enum PumpEnd
{
    /// <summary>The sending side closed gracefully (FIN); it was passed on as a half-close.</summary>
    SourceFin,

    /// <summary>The sending side reset or failed.</summary>
    SourceReset,

    /// <summary>Writing to the receiving side failed (it reset or went away).</summary>
    DestinationFailed,

    /// <summary>The proxy aborted the connection.</summary>
    Aborted,

    /// <summary>The route gained a toxic: the plain pump stopped at a read for the toxics' pump to go on (<see cref="PlainForward"/>).</summary>
    Switched,
}
