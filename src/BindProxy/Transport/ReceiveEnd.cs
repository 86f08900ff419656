namespace BindProxy.Transport;

/// <summary>How the receive side of a <see cref="PipeSocket"/> ended.</summary>
internal enum ReceiveEnd
{
    /// <summary>Still receiving.</summary>
    Open,

    /// <summary>The peer sent FIN: no more data will come, but we may still send.</summary>
    Fin,

    /// <summary>The peer reset the connection (RST).</summary>
    Reset,

    /// <summary>This side aborted the socket.</summary>
    Aborted,

    /// <summary>Any other socket error.</summary>
    Error,
}
