using System.Net;
using BindProxy.Addressing;

namespace BindProxy.Forwarding;

/// <summary>An intercepted connection being set up: where it was going, and the search for its process.</summary>
internal sealed record PendingInterception(IPEndPoint OriginalDestination, Task<ProcessInfo?> Owner);
