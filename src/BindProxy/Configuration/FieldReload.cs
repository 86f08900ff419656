namespace BindProxy.Configuration;

/// <summary>When an edit of a field takes effect while the proxy runs.</summary>
internal enum FieldReload
{
    /// <summary>For every new connection from the reload on (and for the route's listeners and members).</summary>
    Live,

    /// <summary>At the next restart; the reload names the key. No route field needs it today; <c>BindProxy:Engine</c> and the <c>Admin</c> keys do.</summary>
    Restart,
}
