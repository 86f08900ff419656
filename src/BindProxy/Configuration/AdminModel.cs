using System.Net;

namespace BindProxy.Configuration;

/// <summary>A validated admin endpoint.</summary>
internal sealed record AdminModel(IPEndPoint Listen, bool AllowNonLoopback)
{
    public bool IsLoopback => IPAddress.IsLoopback(Listen.Address);
}
