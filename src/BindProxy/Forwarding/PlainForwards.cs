using System.Collections.Concurrent;
using BindProxy.Faults;
using BindProxy.Transport;

namespace BindProxy.Forwarding;

/// <summary>
/// The pipe path's connections forwarded as they are, because their route had no toxic when they
/// opened. When the route gains one, each is told to go on through the toxics, as toxiproxy's
/// toxics reach open connections: the change cancels its pending reads (<see cref="PlainForward.Switch"/>),
/// so nothing on the data path looks for it.
/// </summary>
internal sealed class PlainForwards
{
    private readonly ConcurrentDictionary<PlainForward, byte> _open = new();

    public PlainForwards(FaultTable faults)
    {
        faults.Changed += OnChanged;
    }

    /// <summary>Watches a connection of <paramref name="route"/> until <see cref="Remove"/>.</summary>
    public PlainForward Add(string route, PipeSocket client, PipeSocket upstream)
    {
        var plain = new PlainForward(route, client, upstream);
        _open.TryAdd(plain, 0);
        return plain;
    }

    public void Remove(PlainForward plain) => _open.TryRemove(plain, out _);

    private void OnChanged(RouteFaults route)
    {
        if (!route.HasToxics)
        {
            return;
        }

        foreach (var plain in _open.Keys)
        {
            if (string.Equals(plain.Route, route.Route, StringComparison.Ordinal))
            {
                plain.Switch();
            }
        }
    }
}

/// <summary>One connection forwarded as it is until its route gains a toxic (<see cref="Switch"/>).</summary>
internal sealed class PlainForward(string route, PipeSocket client, PipeSocket upstream)
{
    private int _switched;

    public string Route => route;

    /// <summary>Set once the route has a toxic: a pump whose read was cancelled stops there for the toxics' pump.</summary>
    public bool Switched => Volatile.Read(ref _switched) != 0;

    /// <summary>Stops both directions' plain pumps at their next read (any thread, once).</summary>
    public void Switch()
    {
        if (Interlocked.Exchange(ref _switched, 1) == 0)
        {
            client.Input.CancelPendingRead();
            upstream.Input.CancelPendingRead();
        }
    }
}
