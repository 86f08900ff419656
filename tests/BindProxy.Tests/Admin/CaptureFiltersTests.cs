using System.Diagnostics;
using System.Net;
using BindProxy.Addressing;
using BindProxy.Admin;
using BindProxy.Tests.Infrastructure;
using BindProxy.Wireshark;

namespace BindProxy.Tests.Admin;

/// <summary>The filters the admin API and status page hand out, compiled by the real tshark.</summary>
public sealed class CaptureFiltersTests
{
    public static TheoryData<int[]> PortSets => new() { Array.Empty<int>(), new[] { 9092 }, new[] { 9092, 9093, 9094 } };

    [Theory]
    [MemberData(nameof(PortSets))]
    public async Task Every_Wireshark_filter_is_one_tshark_accepts(int[] ports)
    {
        var tshark = ExternalTool.Require("tshark");
        var filters = new[]
        {
            CaptureFilters.Wireshark(IPAddress.Parse("127.0.0.2"), ports),
            CaptureFilters.Wireshark(IPAddress.IPv6Loopback, ports),
        };

        // An empty capture file (a pcap header only): tshark compiles the filter and reads no packet.
        var empty = Path.Combine(Path.GetTempPath(), $"bindproxy-empty-{Guid.NewGuid():n}.pcap");
        await File.WriteAllBytesAsync(empty, [0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0]);
        try
        {
            foreach (var filter in filters)
            {
                var info = new ProcessStartInfo(tshark, ["-r", empty, "-Y", filter]) { RedirectStandardOutput = true, RedirectStandardError = true };
                using var process = Process.Start(info)!;
                var stderr = process.StandardError.ReadToEndAsync();
                await process.StandardOutput.ReadToEndAsync();
                await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
                Assert.True(process.ExitCode == 0, $"tshark rejects '{filter}': {await stderr}");
            }
        }
        finally
        {
            File.Delete(empty);
        }
    }
}
