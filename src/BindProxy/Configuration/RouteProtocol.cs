namespace BindProxy.Configuration;

/// <summary>The wire protocol of a route.</summary>
internal enum RouteProtocol
{
    /// <summary>Bytes pass through untouched.</summary>
    Tcp,

    /// <summary>Kafka: broker addresses in responses are rewritten to the proxy's own.</summary>
    Kafka,

    /// <summary>HTTP/1.1 and HTTP/2: requests are forwarded by YARP over source-bound upstream connections.</summary>
    Http,
}
