using System.Net.Sockets;
using BindProxy.Transport;

namespace BindProxy.Forwarding;

/// <summary>
/// Moves bytes both ways between a client and its upstream until both directions end. A FIN
/// on one side becomes a half-close on the other while the opposite direction keeps flowing;
/// a reset on either side resets both. Both directions are always awaited.
/// </summary>
internal static class Forwarder
{
    /// <summary>
    /// Awaits two running pumps (client→upstream, upstream→client), resets both sockets as soon as
    /// either pump ends abnormally or <paramref name="cancellationToken"/> fires, and names the reason.
    /// </summary>
    public static async Task<CloseReason> RunAsync(PipeSocket client, PipeSocket upstream, Task<PumpEnd> toUpstream, Task<PumpEnd> toClient, CancellationToken cancellationToken)
    {
        await using var abortOnCancel = cancellationToken.Register(() =>
        {
            client.Abort();
            upstream.Abort();
        }).ConfigureAwait(false);

        var first = await Task.WhenAny(toUpstream, toClient).ConfigureAwait(false);
        var firstEnd = await first.ConfigureAwait(false);
        bool firstIsUpward = first == toUpstream;
        if (firstEnd != PumpEnd.SourceFin)
        {
            client.Abort();
            upstream.Abort();
        }

        var secondEnd = await (firstIsUpward ? toClient : toUpstream).ConfigureAwait(false);
        if (secondEnd != PumpEnd.SourceFin)
        {
            client.Abort();
            upstream.Abort();
        }

        // Both closed cleanly: the connection is done once each peer has everything sent to it;
        // then whoever sent FIN first (the pumps may finish in either order when they run on
        // different threads) names the close.
        if (firstEnd == PumpEnd.SourceFin && secondEnd == PumpEnd.SourceFin)
        {
            await client.FlushAsync().ConfigureAwait(false);
            await upstream.FlushAsync().ConfigureAwait(false);
            return client.FinOrder <= upstream.FinOrder ? CloseReason.ClientClosed : CloseReason.UpstreamClosed;
        }

        // The first abnormal end is the reason; when the first end was a clean FIN, a later
        // reset still says more about what happened.
        return firstEnd == PumpEnd.SourceFin
            ? Classify(secondEnd, !firstIsUpward)
            : Classify(firstEnd, firstIsUpward);
    }

    private static CloseReason Classify(PumpEnd end, bool upward) => end switch
    {
        PumpEnd.SourceFin => upward ? CloseReason.ClientClosed : CloseReason.UpstreamClosed,
        PumpEnd.SourceReset => upward ? CloseReason.ClientReset : CloseReason.UpstreamReset,
        PumpEnd.DestinationFailed => upward ? CloseReason.UpstreamReset : CloseReason.ClientReset,
        _ => CloseReason.ProxyAborted,
    };

    /// <summary>
    /// Copies <paramref name="from"/>'s received bytes to <paramref name="to"/> until FIN or failure,
    /// or until <paramref name="until"/> is switched (<see cref="PumpEnd.Switched"/>, everything
    /// read so far sent, nothing more taken from the pipe).
    /// </summary>
    public static async Task<PumpEnd> PumpAsync(PipeSocket from, PipeSocket to, PlainForward? until = null)
    {
        var input = from.Input;
        while (true)
        {
            var result = await input.ReadAsync().ConfigureAwait(false);
            var buffer = result.Buffer;
            if (!buffer.IsEmpty)
            {
                var error = await to.SendAsync(buffer, CancellationToken.None).ConfigureAwait(false);
                if (error != SocketError.Success)
                {
                    input.AdvanceTo(buffer.End);
                    return from.IsAborted || to.IsAborted ? PumpEnd.Aborted : PumpEnd.DestinationFailed;
                }
            }

            input.AdvanceTo(buffer.End);
            if (result.IsCanceled && !result.IsCompleted && until is { Switched: true })
            {
                return PumpEnd.Switched;
            }

            if (result.IsCompleted || result.IsCanceled)
            {
                return End(from, to);
            }
        }
    }

    /// <summary>The source's pipe has completed: pass a FIN on, or report how it failed.</summary>
    public static PumpEnd End(PipeSocket from, PipeSocket to)
    {
        switch (from.ReceiveEnd)
        {
            case ReceiveEnd.Fin:
                to.ShutdownSend();
                return PumpEnd.SourceFin;
            case ReceiveEnd.Reset:
            case ReceiveEnd.Error:
                return PumpEnd.SourceReset;
            default:
                return PumpEnd.Aborted;
        }
    }
}
