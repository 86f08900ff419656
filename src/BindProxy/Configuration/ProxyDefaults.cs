using System.Globalization;

namespace BindProxy.Configuration;

/// <summary>
/// The defaults of the settings that runtime code needs typed, read from the settings'
/// definitions (<see cref="ConfigFieldAttribute.Default"/>): the value a route made at run time
/// gets is the one the configuration file gets when the field is absent.
/// </summary>
internal static class ProxyDefaults
{
    public static readonly TimeSpan ConnectTimeout = Duration(RouteConfig.Fields, nameof(RouteConfig.ConnectTimeout));

    /// <summary>Idle time allowed within an HTTP request (YARP's default activity timeout).</summary>
    public static readonly TimeSpan RequestTimeout = Duration(RouteConfig.Fields, nameof(RouteConfig.RequestTimeout));

    public static readonly int MaxFrameSize = int.Parse(RouteConfig.Fields[nameof(RouteConfig.MaxFrameSize)].Default!, CultureInfo.InvariantCulture);

    public static readonly TimeSpan DrainTimeout = Duration(ProxyConfig.Fields, nameof(ProxyConfig.DrainTimeout));

    public static readonly TimeSpan FlushTimeout = Duration(ProxyConfig.Fields, nameof(ProxyConfig.FlushTimeout));

    public static readonly TimeSpan StallTimeout = Duration(ProxyConfig.Fields, nameof(ProxyConfig.StallTimeout));

    public static readonly TimeSpan FrameTimeout = Duration(RouteConfig.Fields, nameof(RouteConfig.FrameTimeout));

    public static readonly TimeSpan AssignmentIdleTimeout = Duration(RouteConfig.Fields, nameof(RouteConfig.AssignmentIdleTimeout));

    private static TimeSpan Duration(FieldTable table, string name) => TimeSpan.Parse(table[name].Default!, CultureInfo.InvariantCulture);
}
