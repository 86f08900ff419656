using System.Runtime.InteropServices;
using System.Runtime.Versioning;

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

/// <summary>How <c>BindProxy:Engine</c> and <c>--engine</c> are read, and which engine a setting comes to on this platform.</summary>
internal static class EngineSettings
{
    /// <summary>The words <c>--engine</c> and <c>BindProxy:Engine</c> take.</summary>
    public static string Expected => "auto, relay or pipes";

    /// <summary>Where the relay engine runs: Linux on x64 or arm64, where its libc constants and epoll_event layout hold.</summary>
    [SupportedOSPlatformGuard("linux")]
    public static bool RelayRuns => OperatingSystem.IsLinux() &&
        RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64;

    /// <summary>Reads <c>auto</c>, <c>relay</c> or <c>pipes</c> (any case); false for anything else.</summary>
    public static bool TryParse(string? text, out EngineSetting setting)
    {
        setting = EngineSetting.Auto;
        return text is not null && !int.TryParse(text, out _) && Enum.TryParse(text.Trim(), ignoreCase: true, out setting) && Enum.IsDefined(setting);
    }

    /// <summary>
    /// The engine <paramref name="setting"/> comes to here, <see cref="EngineSetting.Relay"/> or
    /// <see cref="EngineSetting.Pipes"/> (auto: relay where it runs); null, with the reason, when
    /// the relay engine was asked for where it cannot run.
    /// </summary>
    public static EngineSetting? Resolve(EngineSetting setting, out string? error)
    {
        error = null;
        switch (setting)
        {
            case EngineSetting.Pipes:
                return EngineSetting.Pipes;
            case EngineSetting.Relay when !RelayRuns:
                error = $"the relay engine runs on Linux x64 and arm64 only, and this is {RuntimeInformation.OSDescription} {RuntimeInformation.ProcessArchitecture}; use auto or pipes";
                return null;
            default:
                return RelayRuns ? EngineSetting.Relay : EngineSetting.Pipes;
        }
    }
}
