using System.Globalization;

namespace BindProxy.Interception;

/// <summary>
/// Waits for the proxy's side of redirected connections to finish closing before the rules go.
/// NAT is applied by hooks that exist only while a nat chain does: once the table is deleted, the
/// last packets of a connection still closing (the client's final ACK) would leave un-redirected,
/// towards the server's real port from the client's own address, and the server would answer
/// with a reset. So the table stays until no socket on the listener ports is between open and
/// closed; TIME_WAIT does not count, since the peer has nothing left to send then.
/// </summary>
internal static class ClosingConnections
{
    // /proc/net/tcp "st" column: TCP_TIME_WAIT 06, TCP_CLOSE 07, TCP_LISTEN 0A.
    private static readonly string[] Settled = ["06", "07", "0A"];

    public static async Task WaitAsync(IReadOnlyCollection<int> listenerPorts, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (Busy(listenerPorts) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20).ConfigureAwait(false);
        }
    }

    /// <summary>True while some socket on one of <paramref name="ports"/> is open or closing.</summary>
    public static bool Busy(IReadOnlyCollection<int> ports)
    {
        foreach (var file in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            try
            {
                foreach (var line in File.ReadLines(file).Skip(1))
                {
                    var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    if (fields.Length > 3 && !Settled.Contains(fields[3]) &&
                        int.TryParse(fields[1].AsSpan(fields[1].IndexOf(':', StringComparison.Ordinal) + 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int port) &&
                        ports.Contains(port))
                    {
                        return true;
                    }
                }
            }
            catch (IOException)
            {
            }
        }

        return false;
    }
}
