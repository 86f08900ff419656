using System.Net.Sockets;
using BindProxy.Configuration;
using BindProxy.Hosting;
using BindProxy.Interception;

namespace BindProxy.Cli;

/// <summary>
/// The words for an expected failure to start — a listener that cannot be bound, interception
/// the kernel refuses — as one line, the same for serve and <c>exec</c>; anything else is not
/// expected and keeps its stack trace.
/// </summary>
internal static class StartupFailure
{
    /// <summary>One line for <paramref name="e"/>, or null when it is not an expected failure to start.</summary>
    /// <param name="model">
    /// The configuration being started: an admin port that was free when it was test-bound and is
    /// taken now is described as the check describes it, with the process that holds it.
    /// </param>
    public static string? Describe(Exception e, ProxyModel model)
    {
        for (var inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is ListenerUnavailableException or InterceptionUnavailableException)
            {
                return inner.Message;
            }

            if (inner is SocketException or UnauthorizedAccessException or Microsoft.AspNetCore.Connections.AddressInUseException)
            {
                // The proxy's own listeners are bound by now and would read as busy; only the admin
                // endpoint is bound by Kestrel, and a bind error from Kestrel is that one.
                if (ListenerCheck.Admin(model) is { } admin)
                {
                    return admin.ToString();
                }

                // The outermost message names the route or endpoint; the socket's says why.
                return e == inner || e.Message.Contains(inner.Message, StringComparison.Ordinal) ? e.Message : $"{e.Message.TrimEnd('.')} ({inner.Message})";
            }
        }

        return null;
    }
}
