namespace BindProxy.Transport;

/// <summary>Why a proxied connection ended; decided once, by the first side that ended it.</summary>
internal enum CloseReason
{
    /// <summary>Both sides closed; the client sent FIN first.</summary>
    ClientClosed,

    /// <summary>Both sides closed; the upstream sent FIN first.</summary>
    UpstreamClosed,

    /// <summary>The client reset the connection; the upstream was reset too.</summary>
    ClientReset,

    /// <summary>The upstream reset the connection; the client was reset too.</summary>
    UpstreamReset,

    /// <summary>The upstream did not answer within the connect timeout.</summary>
    ConnectTimeout,

    /// <summary>The upstream refused the connection.</summary>
    ConnectRefused,

    /// <summary>No source address of the route could reach the upstream.</summary>
    SourcesExhausted,

    /// <summary>The upstream could not be resolved or connected for another reason.</summary>
    ConnectFailed,

    /// <summary>The proxy aborted the connection (shutdown, route removed).</summary>
    ProxyAborted,

    /// <summary>No byte moved either way for the route's IdleTimeout.</summary>
    IdleTimeout,

    /// <summary>Kafka: a frame stayed incomplete for the route's FrameTimeout.</summary>
    FrameStalled,

    /// <summary>Both sides had ended, but a peer took none of the bytes still queued for it for the flush timeout; both were reset.</summary>
    FlushTimeout,

    /// <summary>The proxy failed itself (an unexpected error on the connection's relay loop); both sides were reset.</summary>
    InternalError,
}

internal static class CloseReasonExtensions
{
    /// <summary>A short, log-friendly text.</summary>
    public static string Describe(this CloseReason reason) => reason switch
    {
        CloseReason.ClientClosed => "client FIN",
        CloseReason.UpstreamClosed => "upstream FIN",
        CloseReason.ClientReset => "reset by client",
        CloseReason.UpstreamReset => "reset by upstream",
        CloseReason.ConnectTimeout => "connect timeout",
        CloseReason.ConnectRefused => "connect refused",
        CloseReason.SourcesExhausted => "source addresses exhausted",
        CloseReason.ConnectFailed => "connect failed",
        CloseReason.ProxyAborted => "aborted by proxy",
        CloseReason.IdleTimeout => "idle timeout",
        CloseReason.FrameStalled => "stalled mid-frame",
        CloseReason.FlushTimeout => "flush timeout (a peer took none of the rest sent to it)",
        CloseReason.InternalError => "internal error",
        _ => reason.ToString(),
    };
}
