using System.Net;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Interception;
using BindProxy.Transport;
using Microsoft.Extensions.Logging;

namespace BindProxy.Forwarding;

/// <summary>
/// The part of serving a connection that only intercepting routes have: its upstream is the
/// original destination the kernel kept for the redirected socket, and its log line says which
/// process it came from.
/// </summary>
internal sealed partial class InterceptedConnections(ProcessLookup processes, ILogger<InterceptedConnections> logger)
{
    /// <summary>
    /// Starts serving an intercepted connection: its original destination, with the lookup of
    /// its process under way. Null (logged) when the connection was not redirected: someone
    /// connected to the listener itself, and forwarding it to itself would loop.
    /// </summary>
    public PendingInterception? Begin(RouteModel route, IInboundSocketFeature inbound)
    {
        var original = inbound.OriginalDestination;
        if (original is null || original.Equals(inbound.Listener))
        {
            Log.NotRedirected(logger, route.Name, inbound.Client, inbound.Listener);
            return null;
        }

        // Reading /proc blocks; it runs while the upstream connects. A cgroup's own process list
        // names the few candidates, so the whole of /proc is not searched.
        var client = inbound.Client;
        var candidates = route.Intercept?.Selector is InterceptSelector.Cgroup cgroup ? cgroup.Directory : null;
        var owner = Task.Run(() => processes.Find(client, original, candidates is null ? null : GroupProcesses(candidates)));
        return new PendingInterception(original, owner);
    }

    /// <summary>The connection's description once its upstream is open, logged once.</summary>
    public async Task<InterceptedClient> OpenedAsync(string route, PendingInterception pending, IPEndPoint client, IPEndPoint source)
    {
        // The process only names the connection in its log line: a slow search does not hold it up.
        ProcessInfo? owner = null;
        try
        {
            if (await Task.WhenAny(pending.Owner, Task.Delay(LookupWait)).ConfigureAwait(false) == pending.Owner)
            {
                owner = await pending.Owner.ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // /proc changed under the search (a process exited): the connection is served all the same.
        }

        var described = new InterceptedClient(pending.OriginalDestination, owner?.Pid, owner is null ? null : ProcessLookup.CommandLine(owner.Pid) ?? owner.Name);
        Log.Intercepted(logger, route, described.Process, client, described.OriginalDestination, source);
        return described;
    }

    private static readonly TimeSpan LookupWait = TimeSpan.FromMilliseconds(250);

    private static int[] GroupProcesses(string directory)
    {
        try
        {
            return [.. File.ReadLines(Path.Combine(directory, "cgroup.procs"))
                .Select(line => int.TryParse(line, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int pid) ? pid : 0)
                .Where(pid => pid > 0)];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    private static partial class Log
    {
        [LoggerMessage(930, LogLevel.Information, "{Route}: intercepted {Process}: {Client} → {OriginalDestination}, re-originated from {Source}")]
        public static partial void Intercepted(ILogger logger, string route, string process, IPEndPoint client, IPEndPoint originalDestination, IPEndPoint source);

        [LoggerMessage(931, LogLevel.Warning, "{Route}: {Client} connected to {Listener} directly, not through a redirect; closed (this listener serves only intercepted connections)")]
        public static partial void NotRedirected(ILogger logger, string route, IPEndPoint client, IPEndPoint listener);
    }
}
