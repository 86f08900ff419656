using System.Diagnostics.CodeAnalysis;
using BindProxy.Configuration;
using BindProxy.Transport;

namespace BindProxy.Forwarding;

/// <summary>
/// The routes being served: the configuration as last applied (immutable, replaced whole) and one
/// family per configured route — the route itself and the routes opened for it at run time, such
/// as the listener of each discovered Kafka broker. Changed by the reload only.
/// </summary>
internal sealed class RouteTable
{
    private readonly Lock _lock = new();
    private ProxyModel _current;
    private ServedRoute[] _roots;

    public RouteTable(ProxyModel initial)
    {
        _current = initial;
        _roots = [.. initial.Routes.Select(ServedRoute.Configured)];
    }

    public ProxyModel Current => Volatile.Read(ref _current);

    /// <summary>The configured routes, in the configuration's order.</summary>
    public IReadOnlyList<ServedRoute> Roots => Volatile.Read(ref _roots);

    /// <summary>Every route served: each configured route followed by its members.</summary>
    public IEnumerable<ServedRoute> All => Roots.SelectMany(root => root.Family);

    public bool TryGetRoot(string name, [NotNullWhen(true)] out ServedRoute? root)
    {
        root = Roots.FirstOrDefault(r => r.Name == name);
        return root is not null;
    }

    /// <summary>The definition served now for the route named <paramref name="name"/> (a configured route or a member).</summary>
    public bool TryFind(string name, [NotNullWhen(true)] out RouteModel? route)
    {
        route = All.FirstOrDefault(r => r.Name == name)?.Model;
        return route is not null;
    }

    /// <summary>Adds a route made at run time; null when a route of that name is served already.</summary>
    public ServedRoute? AddRuntime(RouteModel route)
    {
        lock (_lock)
        {
            if (All.Any(r => r.Name == route.Name))
            {
                return null;
            }

            var root = ServedRoute.Runtime(route);
            Volatile.Write(ref _roots, [.. _roots, root]);
            return root;
        }
    }

    /// <summary>Takes a route made at run time out of the table and marks it removed; false when it is not one.</summary>
    public bool RemoveRuntime(ServedRoute root)
    {
        lock (_lock)
        {
            if (!root.IsRuntime || !_roots.Contains(root))
            {
                return false;
            }

            root.Remove();
            Volatile.Write(ref _roots, [.. _roots.Where(r => r != root)]);
            return true;
        }
    }

    /// <summary>
    /// Makes <paramref name="model"/> the configuration served: its routes that have no family yet
    /// get one (returned), families of routes it no longer has are marked removed (returned), and
    /// the others take their definition from it (with their members).
    /// </summary>
    public (IReadOnlyList<ServedRoute> Added, IReadOnlyList<ServedRoute> Removed) Replace(ProxyModel model)
    {
        lock (_lock)
        {
            var byName = Roots.ToDictionary(r => r.Name, StringComparer.Ordinal);
            var added = new List<ServedRoute>();
            var roots = new List<ServedRoute>();
            foreach (var route in model.Routes)
            {
                if (byName.Remove(route.Name, out var root))
                {
                    if (!ReferenceEquals(root.Model, route))
                    {
                        root.Update(route);
                    }
                }
                else
                {
                    root = ServedRoute.Configured(route);
                    added.Add(root);
                }

                roots.Add(root);
            }

            // Routes made at run time are not in the file: they stay until removed the way they came.
            foreach (var runtime in byName.Values.Where(r => r.IsRuntime).ToList())
            {
                byName.Remove(runtime.Name);
                roots.Add(runtime);
            }

            foreach (var removed in byName.Values)
            {
                removed.Remove();
            }

            Volatile.Write(ref _roots, [.. roots]);
            Volatile.Write(ref _current, model);
            return (added, [.. byName.Values]);
        }
    }
}
