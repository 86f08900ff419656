using BindProxy.Configuration;

namespace BindProxy.Forwarding;

/// <summary>The routes being served; the model is immutable and replaced whole.</summary>
internal sealed class RouteTable(ProxyModel initial)
{
    private ProxyModel _current = initial;

    public ProxyModel Current => Volatile.Read(ref _current);

    public void Replace(ProxyModel model) => Volatile.Write(ref _current, model);
}
