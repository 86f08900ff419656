namespace BindProxy.Configuration;

/// <summary>When an edit of a field takes effect while the proxy runs.</summary>
internal enum FieldReload
{
    /// <summary>For every new connection from the reload on.</summary>
    Live,

    /// <summary>
    /// Live, except on Http routes (either side of the edit): their listeners are Kestrel HTTP
    /// endpoints, fixed when the server starts.
    /// </summary>
    RestartOnHttp,

    /// <summary>At the next restart.</summary>
    Restart,
}
