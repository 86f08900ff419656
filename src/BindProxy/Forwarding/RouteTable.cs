using System.Collections.Concurrent;
using BindProxy.Configuration;

namespace BindProxy.Forwarding;

/// <summary>
/// The routes being served: the configured model (immutable, replaced whole) plus routes added at
/// run time, such as the listener of each discovered Kafka broker.
/// </summary>
internal sealed class RouteTable(ProxyModel initial)
{
    private readonly ConcurrentDictionary<string, RouteModel> _dynamic = new(StringComparer.Ordinal);
    private ProxyModel _current = initial;

    public ProxyModel Current => Volatile.Read(ref _current);

    public void Replace(ProxyModel model) => Volatile.Write(ref _current, model);

    public void AddDynamic(RouteModel route) => _dynamic[route.Name] = route;

    public IReadOnlyCollection<RouteModel> Dynamic => [.. _dynamic.Values];

    public bool TryFind(string name, out RouteModel route) =>
        Current.ByName.TryGetValue(name, out route!) || _dynamic.TryGetValue(name, out route!);
}
