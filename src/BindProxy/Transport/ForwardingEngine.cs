using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace BindProxy.Configuration;

/// <summary>
/// The engine that forwards plain Tcp routes, chosen once at startup from an
/// <see cref="EngineSetting"/>: the epoll relay engine (Linux x64 and arm64, where its libc
/// constants and epoll_event layout hold) or the pipe engine, which runs everywhere. Kafka
/// routes always use pipes (they parse what they forward), Http routes YARP. Listeners and the
/// connection handler ask <see cref="IsRelay"/>, which the platform analyzer knows as a Linux guard.
/// </summary>
internal sealed class ForwardingEngine
{
    public static readonly ForwardingEngine Pipes = new("pipes", relay: false);

    private ForwardingEngine(string name, bool relay)
    {
        Name = name;
        IsRelay = relay && RelayRuns;
    }

    /// <summary>relay or pipes, as <c>--engine</c> spells it.</summary>
    public string Name { get; }

    /// <summary>True for the relay engine (which is only ever chosen on Linux).</summary>
    [SupportedOSPlatformGuard("linux")]
    public bool IsRelay { get; }

    /// <summary>The words <c>--engine</c> and <c>BindProxy:Engine</c> take.</summary>
    public static string Expected => "auto, relay or pipes";

    /// <summary>Where the relay engine runs: Linux on x64 or arm64.</summary>
    [SupportedOSPlatformGuard("linux")]
    public static bool RelayRuns => OperatingSystem.IsLinux() &&
        RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64;

    private static ForwardingEngine? Relay { get; } = RelayRuns ? new("relay", relay: true) : null;

    /// <summary>Reads <c>auto</c>, <c>relay</c> or <c>pipes</c> (any case); false for anything else.</summary>
    public static bool TryParse(string? text, out EngineSetting setting)
    {
        setting = EngineSetting.Auto;
        return text is not null && !int.TryParse(text, out _) && Enum.TryParse(text.Trim(), ignoreCase: true, out setting) && Enum.IsDefined(setting);
    }

    /// <summary>The engine for <paramref name="setting"/>; null, with the reason, when it cannot run here.</summary>
    public static ForwardingEngine? Select(EngineSetting setting, out string? error)
    {
        error = null;
        switch (setting)
        {
            case EngineSetting.Pipes:
                return Pipes;
            case EngineSetting.Relay when Relay is null:
                error = $"the relay engine runs on Linux x64 and arm64 only, and this is {RuntimeInformation.OSDescription} {RuntimeInformation.ProcessArchitecture}; use auto or pipes";
                return null;
            default:
                return Relay ?? Pipes;
        }
    }

    public override string ToString() => Name;
}
