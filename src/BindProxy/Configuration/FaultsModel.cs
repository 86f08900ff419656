using System.Net;

namespace BindProxy.Configuration;

/// <summary>A validated fault API listener.</summary>
internal sealed record FaultsModel(IPEndPoint Listen, bool AllowNonLoopback)
{
    public bool IsLoopback => IPAddress.IsLoopback(Listen.Address);
}
