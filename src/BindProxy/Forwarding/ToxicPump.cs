using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net.Sockets;
using BindProxy.Faults;
using BindProxy.Transport;

namespace BindProxy.Forwarding;

/// <summary>
/// The byte toxics, as a stage between a connection's two <see cref="PipeSocket"/>s: each
/// direction's pump reads what its source sent and passes it on through the toxics of that
/// direction that apply to the connection (toxiproxy's semantics: <c>latency</c>, <c>bandwidth</c>,
/// <c>slow_close</c>, <c>timeout</c>, <c>reset_peer</c>, <c>slicer</c>, <c>limit_data</c>). It reads
/// the route's toxic list at every chunk, so a toxic added, changed or removed reaches open
/// connections; with no toxic it forwards as <see cref="Forwarder.PumpAsync"/> does.
/// </summary>
internal static class ToxicPump
{
    /// <summary>The largest delay a bandwidth toxic sleeps at once (toxiproxy's 100 ms).</summary>
    private const int BandwidthStepMs = 100;

    /// <summary>Forwards both ways through the route's toxics until both directions end.</summary>
    public static Task<CloseReason> ForwardAsync(PipeSocket client, PipeSocket upstream, RouteFaults faults, ConnectionIdentity who, Action<Toxic>? applied, CancellationToken cancellationToken) =>
        ForwardAsync(client, upstream, faults, who, applied, default, default, cancellationToken);

    /// <summary>
    /// Forwards both ways through the route's toxics until both directions end, each direction
    /// first sending on the bytes an earlier way of forwarding the connection had read and not yet
    /// sent (<paramref name="heldForUpstream"/>, <paramref name="heldForClient"/>: a relay
    /// connection that moved here), as they were, before anything read since.
    /// </summary>
    public static async Task<CloseReason> ForwardAsync(PipeSocket client, PipeSocket upstream, RouteFaults faults, ConnectionIdentity who, Action<Toxic>? applied,
        ReadOnlyMemory<byte> heldForUpstream, ReadOnlyMemory<byte> heldForClient, CancellationToken cancellationToken)
    {
        // A pump asleep in a toxic's delay wakes when the connection ends some other way.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var toUpstream = GuardAsync(PumpAsync(client, upstream, new ToxicLink(faults, ToxicStream.Upstream, who) { Applied = applied }, heldForUpstream, stop.Token), stop);
        var toClient = GuardAsync(PumpAsync(upstream, client, new ToxicLink(faults, ToxicStream.Downstream, who) { Applied = applied }, heldForClient, stop.Token), stop);
        return await Forwarder.RunAsync(client, upstream, toUpstream, toClient, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Forwards both ways as <see cref="Forwarder"/> does while the route has no toxic, and each
    /// direction through the toxics from the read at which <paramref name="plain"/> is switched (the
    /// route gained one) on, until both directions end.
    /// </summary>
    public static async Task<CloseReason> ForwardPlainThenAsync(PipeSocket client, PipeSocket upstream, PlainForward plain, Func<RouteFaults> faults,
        ConnectionIdentity who, Action<Toxic>? applied, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var toUpstream = GuardAsync(ThenAsync(Forwarder.PumpAsync(client, upstream, plain), client, upstream, () => new ToxicLink(faults(), ToxicStream.Upstream, who) { Applied = applied }, stop.Token), stop);
        var toClient = GuardAsync(ThenAsync(Forwarder.PumpAsync(upstream, client, plain), upstream, client, () => new ToxicLink(faults(), ToxicStream.Downstream, who) { Applied = applied }, stop.Token), stop);
        return await Forwarder.RunAsync(client, upstream, toUpstream, toClient, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<PumpEnd> ThenAsync(Task<PumpEnd> plain, PipeSocket from, PipeSocket to, Func<ToxicLink> link, CancellationToken stop)
    {
        var end = await plain.ConfigureAwait(false);
        return end == PumpEnd.Switched ? await PumpAsync(from, to, link(), default, stop).ConfigureAwait(false) : end;
    }

    private static async Task<PumpEnd> GuardAsync(Task<PumpEnd> pump, CancellationTokenSource stop)
    {
        var end = await pump.ConfigureAwait(false);
        if (end != PumpEnd.SourceFin)
        {
            await stop.CancelAsync().ConfigureAwait(false);
        }

        return end;
    }

    /// <summary>
    /// Copies <paramref name="from"/>'s bytes to <paramref name="to"/> through <paramref name="link"/>'s
    /// toxics until FIN or failure, after sending <paramref name="held"/> (bytes read before the
    /// connection came here) as they are.
    /// </summary>
    public static async Task<PumpEnd> PumpAsync(PipeSocket from, PipeSocket to, ToxicLink link, ReadOnlyMemory<byte> held, CancellationToken stop)
    {
        var input = from.Input;
        var pace = new Pace();
        if (!held.IsEmpty && await to.SendAsync(new ReadOnlySequence<byte>(held), CancellationToken.None).ConfigureAwait(false) != SocketError.Success)
        {
            return from.IsAborted || to.IsAborted ? PumpEnd.Aborted : PumpEnd.DestinationFailed;
        }

        try
        {
            while (true)
            {
                // Taken before the list is read: a change after this wakes the read below.
                var changed = link.Faults.ChangeToken;
                var active = link.Current();
                long now = Stopwatch.GetTimestamp();
                long? wake = null;
                foreach (var toxic in active)
                {
                    if (toxic.Deadline() is not { } deadline)
                    {
                        continue;
                    }

                    if (now >= deadline)
                    {
                        return toxic.Toxic.Kind == ToxicKind.ResetPeer ? Reset(from, to) : Close(from, to);
                    }

                    wake = wake is { } w ? Math.Min(w, deadline) : deadline;
                }

                ReadResult result;
                using (var wakeUp = CancellationTokenSource.CreateLinkedTokenSource(changed, stop))
                {
                    if (wake is { } at)
                    {
                        wakeUp.CancelAfter(Stopwatch.GetElapsedTime(now, at) + TimeSpan.FromMilliseconds(1));
                    }

                    try
                    {
                        result = await input.ReadAsync(wakeUp.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (!stop.IsCancellationRequested)
                    {
                        continue;
                    }
                }

                var buffer = result.Buffer;
                long arrived = Stopwatch.GetTimestamp();
                if (!buffer.IsEmpty)
                {
                    var end = await PassAsync(buffer, arrived, link.Current(), from, to, pace, stop).ConfigureAwait(false);
                    if (end is { } ended)
                    {
                        input.AdvanceTo(buffer.End);
                        return ended;
                    }
                }

                input.AdvanceTo(buffer.End);
                if (result.IsCompleted || result.IsCanceled)
                {
                    if (from.ReceiveEnd == ReceiveEnd.Fin && SlowClose(link.Current()) is > 0 and var delay)
                    {
                        await Task.Delay(TimeSpan.FromMilliseconds(delay), stop).ConfigureAwait(false);
                    }

                    return Forwarder.End(from, to);
                }
            }
        }
        catch (OperationCanceledException)
        {
            return PumpEnd.Aborted;
        }
    }

    private static long SlowClose(IReadOnlyList<ToxicLink.Active> active)
    {
        long delay = 0;
        foreach (var toxic in active)
        {
            if (toxic.Toxic.Kind == ToxicKind.SlowClose)
            {
                delay += toxic.Toxic["delay"];
            }
        }

        return delay;
    }

    /// <summary>Passes one chunk on through the toxics; the pump's end when a toxic ended the connection, null to go on.</summary>
    private static async ValueTask<PumpEnd?> PassAsync(ReadOnlySequence<byte> buffer, long arrived, IReadOnlyList<ToxicLink.Active> active,
        PipeSocket from, PipeSocket to, Pace pace, CancellationToken stop)
    {
        long latencyMs = 0;
        long rate = 0;
        ToxicLink.Active? slicer = null;
        long allowed = long.MaxValue;
        foreach (var toxic in active)
        {
            var t = toxic.Toxic;
            if (t.Kind == ToxicKind.ResetPeer && t["timeout"] == 0)
            {
                // reset_peer with no timeout resets at the connection's first data.
                return Reset(from, to);
            }

            if (t.Kind == ToxicKind.Timeout)
            {
                // Nothing gets through; the timer (if any) closes the connection.
                return null;
            }

            if (t.Kind == ToxicKind.Latency)
            {
                long jitter = t["jitter"];
                latencyMs += t["latency"] + (jitter > 0 ? Random.Shared.NextInt64(-jitter, jitter + 1) : 0);
            }
            else if (t.Kind == ToxicKind.Bandwidth)
            {
                rate = rate == 0 ? t["rate"] : Math.Min(rate, t["rate"]);
            }
            else if (t.Kind == ToxicKind.Slicer && t["average_size"] > 0)
            {
                slicer = toxic;
            }
            else if (t.Kind == ToxicKind.LimitData && t["bytes"] > 0)
            {
                allowed = Math.Min(allowed, t["bytes"] - toxic.State.Passed);
            }
        }


        if (latencyMs > 0)
        {
            var wait = TimeSpan.FromMilliseconds(latencyMs) - Stopwatch.GetElapsedTime(arrived);
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, stop).ConfigureAwait(false);
            }
        }

        bool limited = allowed < buffer.Length;
        var rest = limited ? buffer.Slice(0, Math.Max(0, allowed)) : buffer;
        while (!rest.IsEmpty)
        {
            long size = rest.Length;
            if (slicer is { } s)
            {
                long average = s.Toxic["average_size"];
                long variation = Math.Min(s.Toxic["size_variation"], average - 1);
                size = Math.Min(size, Math.Max(1, average + (variation > 0 ? Random.Shared.NextInt64(-variation, variation + 1) : 0)));
            }

            if (rate > 0)
            {
                size = Math.Min(size, Math.Max(1, rate * BandwidthStepMs));
                // As toxiproxy: a piece waits its time (rate in KB/s of 1000 bytes) before it goes;
                // time left idle is not saved up for a burst later.
                long now = Stopwatch.GetTimestamp();
                pace.Due = Math.Max(pace.Due, now) + (size * Stopwatch.Frequency / (rate * 1000));
                var wait = Stopwatch.GetElapsedTime(now, pace.Due);
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, stop).ConfigureAwait(false);
                }
            }

            var piece = rest.Slice(0, size);
            var error = await to.SendAsync(piece, CancellationToken.None).ConfigureAwait(false);
            if (error != SocketError.Success)
            {
                return from.IsAborted || to.IsAborted ? PumpEnd.Aborted : PumpEnd.DestinationFailed;
            }

            foreach (var toxic in active)
            {
                if (toxic.Toxic.Kind == ToxicKind.LimitData)
                {
                    toxic.State.Passed += size;
                }
            }

            rest = rest.Slice(size);
            if (slicer is { } sliced && !rest.IsEmpty && sliced.Toxic["delay"] > 0)
            {
                await Task.Delay(TimeSpan.FromMicroseconds(sliced.Toxic["delay"]), stop).ConfigureAwait(false);
            }
        }

        return limited ? Close(from, to) : null;
    }

    /// <summary>When a bandwidth toxic lets the next bytes go (a Stopwatch timestamp).</summary>
    private sealed class Pace
    {
        public long Due;
    }

    /// <summary>Ends the connection as a closed one: FIN both ways (toxiproxy closes both sides).</summary>
    private static PumpEnd Close(PipeSocket from, PipeSocket to)
    {
        to.ShutdownSend();
        from.ShutdownSend();
        return PumpEnd.SourceFin;
    }

    /// <summary>Ends the connection with a reset of both sides (SO_LINGER 0, as toxiproxy's reset_peer).</summary>
    private static PumpEnd Reset(PipeSocket from, PipeSocket to)
    {
        from.Abort();
        to.Abort();
        return PumpEnd.Aborted;
    }
}
