using BindProxy.Configuration;
using BindProxy.Transport;

namespace BindProxy.Tests.Infrastructure;

/// <summary>
/// The forwarding engines a plain Tcp test runs on: both where the relay engine runs (Linux x64
/// and arm64), the pipe engine alone elsewhere. Names as <c>--engine</c> and <c>BindProxy:Engine</c> take them.
/// </summary>
public static class Engines
{
    public static TheoryData<string> Tcp => EngineSettings.RelayRuns ? new TheoryData<string>("relay", "pipes") : new TheoryData<string>("pipes");

    /// <summary>With each engine, both values of a flag.</summary>
    public static TheoryData<string, bool> TcpWithFlag
    {
        get
        {
            var data = new TheoryData<string, bool>();
            foreach (var engine in Tcp)
            {
                data.Add((string)engine.Data, true);
                data.Add((string)engine.Data, false);
            }

            return data;
        }
    }
}
