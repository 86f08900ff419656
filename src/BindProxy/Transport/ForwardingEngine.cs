using System.Runtime.Versioning;
using BindProxy.Configuration;

namespace BindProxy.Transport;

/// <summary>
/// The engine that forwards plain Tcp routes, made once at startup from the configuration's
/// resolved <see cref="EngineSetting"/>: the epoll relay engine (Linux x64 and arm64) or the pipe
/// engine, which runs everywhere. Kafka routes always use pipes (they parse what they forward),
/// Http routes YARP. Listeners and the connection handler ask <see cref="IsRelay"/>, which the
/// platform analyzer knows as a Linux guard.
/// </summary>
internal sealed class ForwardingEngine
{
    public static readonly ForwardingEngine Pipes = new("pipes", relay: false);

    private static readonly ForwardingEngine? Relay = EngineSettings.RelayRuns ? new("relay", relay: true) : null;

    private ForwardingEngine(string name, bool relay)
    {
        Name = name;
        IsRelay = relay && EngineSettings.RelayRuns;
    }

    /// <summary>relay or pipes, as <c>--engine</c> spells it.</summary>
    public string Name { get; }

    /// <summary>True for the relay engine (which is only ever chosen on Linux).</summary>
    [SupportedOSPlatformGuard("linux")]
    public bool IsRelay { get; }

    /// <summary>The engine for a setting; relay (or auto) where the relay engine cannot run comes to pipes, which validation has already reported.</summary>
    public static ForwardingEngine For(EngineSetting setting) =>
        EngineSettings.Resolve(setting, out _) == EngineSetting.Relay && Relay is not null ? Relay : Pipes;

    public override string ToString() => Name;
}
