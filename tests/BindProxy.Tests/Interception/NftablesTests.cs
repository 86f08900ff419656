using System.Runtime.InteropServices;
using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Interception;
using BindProxy.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace BindProxy.Tests.Interception;

/// <summary>
/// The libnftables adapter against the real kernel, from a thread of this process moved into a
/// network namespace of its own (a network namespace belongs to a thread, so nothing the test
/// does reaches the machine's own rules).
/// </summary>
public sealed class NftablesTests
{
    private const int CloneNewNet = 0x40000000;

    [Fact]
    public async Task Installs_a_table_adds_ports_removes_it_and_removes_tables_of_processes_that_are_gone()
    {
        ExternalTool.RequireRoot("creating a network namespace for nftables");
        Assert.SkipUnless(OperatingSystem.IsLinux(), "nftables is Linux's");
        string[] listed = [];
        string? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                listed = OperatingSystem.IsLinux() ? Run() : [];
            }
            catch (Exception e)
            {
                failure = e.ToString();
            }
        });
        thread.Start();
        await Task.Run(() => thread.Join(TimeSpan.FromSeconds(30)));
        Assert.True(failure is null, failure);
        Assert.Equal(4, listed.Length);
        Assert.Contains("elements = { 9092-9093 }", listed[0], StringComparison.Ordinal);
        Assert.Contains("meta skuid 12345 tcp dport @ports_exec redirect to :40001", listed[0], StringComparison.Ordinal);
        Assert.DoesNotContain("bindproxy_999999", listed[0], StringComparison.Ordinal);
        Assert.Equal("1", listed[1]); // one stale table removed
        Assert.Equal("", listed[2].Trim()); // nothing after Remove
        Assert.Contains("No such file or directory", listed[3], StringComparison.Ordinal); // nft's own error text comes back
    }

    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private static string[] Run()
    {
        if (Unshare(CloneNewNet) != 0)
        {
            ExternalTool.Unavailable($"unshare(CLONE_NEWNET) failed: errno {Marshal.GetLastPInvokeError()}");
        }

        if (!Nftables.TryOpen(out var nft, out var error))
        {
            ExternalTool.Unavailable(error);
        }

        using (nft)
        {
            // A table left by a process that is gone, and one of a process that runs (this one).
            Assert.True(nft!.Run("add table inet bindproxy_999999").Ok);
            int removed = InterceptionTable.RemoveStale(nft, pid => pid != 999999, NullLogger.Instance);

            using var table = new InterceptionTable(nft, Environment.ProcessId, NullLogger.Instance);
            var route = new InterceptedRoute("exec", new InterceptSettings(PortSet.Of(9092), new InterceptSelector.Uid(12345)), 40001, 40002);
            Assert.True(table.TryInstall([route], out var installError), installError);
            Assert.True(table.TryAddPorts("exec", PortSet.Of(9093), out var addError), addError);
            var ruleset = nft.Run("list ruleset").Output;
            Assert.True(table.Remove(out var removeError), removeError);
            var after = nft.Run("list ruleset").Output;
            var missing = nft.Run("delete table inet bindproxy_1").Error;
            return [ruleset, removed.ToString(System.Globalization.CultureInfo.InvariantCulture), after, missing];
        }
    }

#pragma warning disable SYSLIB1054 // LibraryImport would need unsafe code in the test project for one call.
    [DllImport("libc", EntryPoint = "unshare", SetLastError = true)]
    private static extern int Unshare(int flags);
#pragma warning restore SYSLIB1054
}
