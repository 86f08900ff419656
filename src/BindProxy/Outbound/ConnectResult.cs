using System.Net;

namespace BindProxy.Outbound;

/// <summary>Why an upstream connection could not be made.</summary>
internal enum ConnectError
{
    None,

    /// <summary>No answer within the route's connect timeout.</summary>
    Timeout,

    /// <summary>The upstream refused (RST to our SYN).</summary>
    Refused,

    /// <summary>Every source address tried was out of ports or not usable (EADDRINUSE / EADDRNOTAVAIL).</summary>
    SourcesExhausted,

    /// <summary>The upstream host name did not resolve, or not to the source's family.</summary>
    Unresolved,

    /// <summary>Any other socket error (unreachable network or host, ...).</summary>
    Failed,

    /// <summary>The proxy is shutting down or the client went away first.</summary>
    Cancelled,

    /// <summary>No socket could be made: the process (EMFILE) or the system (ENFILE) is out of descriptors.</summary>
    NoDescriptors,
}

/// <summary>The outcome of an upstream connect: the connection, or the reason there is none.</summary>
internal readonly record struct ConnectResult<T>(T? Connection, ConnectError Error, string Detail, IPEndPoint? Upstream, TimeSpan Elapsed)
    where T : class
{
    public bool IsConnected => Connection is not null;
}
