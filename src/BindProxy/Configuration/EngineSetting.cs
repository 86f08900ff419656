namespace BindProxy.Configuration;

/// <summary>The forwarding engine the user asked for (<c>BindProxy:Engine</c>, <c>--engine</c>).</summary>
internal enum EngineSetting
{
    /// <summary>The relay engine where it runs (Linux x64 and arm64), the pipe engine elsewhere.</summary>
    Auto,

    /// <summary>The epoll relay engine; an error where it does not run.</summary>
    Relay,

    /// <summary>The portable engine on System.IO.Pipelines and .NET sockets.</summary>
    Pipes,
}
