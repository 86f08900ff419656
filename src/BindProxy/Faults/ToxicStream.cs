namespace BindProxy.Faults;

/// <summary>Which direction a toxic works on, as toxiproxy names them.</summary>
internal enum ToxicStream
{
    /// <summary>Client to server.</summary>
    Upstream,

    /// <summary>Server to client (toxiproxy's default).</summary>
    Downstream,
}
