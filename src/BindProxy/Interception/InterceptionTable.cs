using System.Runtime.Versioning;
using BindProxy.Addressing;
using Microsoft.Extensions.Logging;

namespace BindProxy.Interception;

/// <summary>
/// The proxy's own nft table (<see cref="InterceptionRuleset"/>): installed whole, given ports as
/// they are found, deleted when the proxy is done. Tables of proxy processes that are gone
/// (killed before they could delete theirs) are removed by the next one.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed partial class InterceptionTable : IDisposable
{
    private readonly Nftables _nft;
    private readonly ILogger _logger;
    private bool _installed;

    public InterceptionTable(Nftables nft, int pid, ILogger logger)
    {
        _nft = nft;
        _logger = logger;
        Name = InterceptionRuleset.TableName(pid);
    }

    public string Name { get; }

    /// <summary>Installs the table for <paramref name="routes"/>; the error is nft's own text.</summary>
    public bool TryInstall(IReadOnlyList<InterceptedRoute> routes, out string error)
    {
        var result = _nft.Run(InterceptionRuleset.Table(Name, routes));
        error = result.Error;
        _installed |= result.Ok;
        return result.Ok;
    }

    /// <summary>Adds <paramref name="ports"/> to <paramref name="route"/>'s set; connections to them are redirected from now on.</summary>
    public bool TryAddPorts(string route, PortSet ports, out string error)
    {
        var result = _nft.Run(InterceptionRuleset.AddPorts(Name, route, ports));
        error = result.Error;
        return result.Ok;
    }

    /// <summary>Deletes the table (idempotent); false with nft's error when it was there and could not be deleted.</summary>
    public bool Remove(out string error)
    {
        error = "";
        if (!_installed)
        {
            return true;
        }

        var result = _nft.Run(InterceptionRuleset.DeleteTable(Name));
        error = result.Error;
        _installed = !result.Ok;
        if (result.Ok)
        {
            Log.Removed(_logger, Name);
        }

        return result.Ok;
    }

    /// <summary>Deletes the tables of proxy processes that no longer run, one log line each.</summary>
    public static int RemoveStale(Nftables nft, Func<int, bool> isRunning, ILogger logger)
    {
        var list = nft.Run(InterceptionRuleset.ListTables);
        int removed = 0;
        foreach (var (table, pid) in InterceptionRuleset.ProxyTables(list.Output))
        {
            if (isRunning(pid))
            {
                continue;
            }

            var result = nft.Run(InterceptionRuleset.DeleteTable(table));
            if (result.Ok)
            {
                removed++;
                Log.StaleRemoved(logger, table, pid);
            }
            else
            {
                Log.StaleNotRemoved(logger, table, pid, result.Error);
            }
        }

        return removed;
    }

    /// <summary>True when <paramref name="pid"/> is a running process (in this pid namespace).</summary>
    public static bool IsRunning(int pid) => Directory.Exists($"/proc/{pid}");

    public void Dispose() => Remove(out _);

    private static partial class Log
    {
        [LoggerMessage(900, LogLevel.Information, "Interception: removed table inet {Table} left by process {Pid}, which no longer runs")]
        public static partial void StaleRemoved(ILogger logger, string table, int pid);

        [LoggerMessage(901, LogLevel.Warning, "Interception: table inet {Table} of process {Pid}, which no longer runs, could not be removed: {Error}")]
        public static partial void StaleNotRemoved(ILogger logger, string table, int pid, string error);

        [LoggerMessage(902, LogLevel.Information, "Interception: removed table inet {Table}")]
        public static partial void Removed(ILogger logger, string table);
    }
}
