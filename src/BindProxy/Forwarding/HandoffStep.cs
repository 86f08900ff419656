namespace BindProxy.Forwarding;

/// <summary>A step on the way from an accepted client to a running relay.</summary>
internal enum HandoffStep
{
    /// <summary>The upstream socket is connected; no relay holds the two sockets yet.</summary>
    Connected,

    /// <summary>The relay holds both sockets and is in the registry; it has not started.</summary>
    Registered,
}
