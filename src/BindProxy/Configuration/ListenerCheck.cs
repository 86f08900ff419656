using BindProxy.Addressing;

namespace BindProxy.Configuration;

/// <summary>
/// Test-binds every endpoint a validated configuration will listen on — route listeners, Kafka
/// broker ports, the admin endpoint — so a busy port or a missing permission is one line naming
/// the route and the endpoint before anything starts. Port 0 is left out: any free port will do.
/// </summary>
internal static class ListenerCheck
{
    /// <summary>Broker ports test-bound per route at most; a wider range is only partly checked.</summary>
    public const int MaxBrokerPorts = 1024;

    public static IReadOnlyList<ConfigError> Check(ProxyModel model)
    {
        var errors = new List<ConfigError>();
        foreach (var route in model.Routes)
        {
            foreach (var endpoint in route.Listen.Endpoints.Where(e => e.Port != 0))
            {
                if (ListenProbe.Check(endpoint, kestrel: route.Protocol == RouteProtocol.Http) is { } problem)
                {
                    errors.Add(new ConfigError(route.Name, nameof(RouteConfig.Listen), problem));
                }
            }

            if (route.Kafka?.BrokerPorts is var (first, last))
            {
                var addresses = route.Listen.Endpoints.Select(e => e.Address).Distinct().ToList();
                foreach (int port in Enumerable.Range(first, Math.Min(last - first + 1, MaxBrokerPorts)))
                {
                    foreach (var address in addresses)
                    {
                        if (ListenProbe.Check(new System.Net.IPEndPoint(address, port)) is { } problem)
                        {
                            errors.Add(new ConfigError(route.Name, nameof(RouteConfig.BrokerPorts), problem));
                        }
                    }
                }
            }
        }

        if (Admin(model) is { } adminProblem)
        {
            errors.Add(adminProblem);
        }

        return errors;
    }

    /// <summary>The admin endpoint's problem (a busy port, a missing permission), or null when it can be listened on or is off.</summary>
    public static ConfigError? Admin(ProxyModel model) =>
        model.Admin is { Listen.Port: not 0 } admin && ListenProbe.Check(admin.Listen, kestrel: true) is { } problem
            ? new ConfigError("", AdminConfig.Fields[nameof(AdminConfig.Listen)].Path, problem)
            : null;
}
