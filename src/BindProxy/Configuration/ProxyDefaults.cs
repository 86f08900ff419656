namespace BindProxy.Configuration;

internal static class ProxyDefaults
{
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Idle time allowed within an HTTP request (YARP's default activity timeout).</summary>
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(100);

    public const int MaxFrameSize = 100 * 1024 * 1024;

    public static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(30);

    public static readonly TimeSpan FrameTimeout = TimeSpan.FromSeconds(30);
}
