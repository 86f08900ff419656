using System.Net;

namespace BindProxy.Interception;

/// <summary>Who an intercepted connection came from and where it was going, for its log line and the admin API.</summary>
/// <param name="Pid">The client process, when it could be found (loopback clients on Linux).</param>
/// <param name="CommandLine">That process's command line, shortened.</param>
internal sealed record InterceptedClient(IPEndPoint OriginalDestination, int? Pid, string? CommandLine)
{
    public string Process => Pid is { } pid ? $"pid {pid} ({CommandLine})" : "an unknown process";
}
