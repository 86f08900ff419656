using System.Globalization;
using System.Net;
using System.Net.Sockets;
using BindProxy.Addressing;

namespace BindProxy.Configuration;

/// <summary>
/// Turns <see cref="ProxyConfig"/> into a <see cref="ProxyModel"/>, collecting every problem
/// (no short-circuit) so the user fixes the file once.
/// </summary>
/// <param name="interception">What the machine offers intercepting routes; without it such a route is refused.</param>
internal sealed class ConfigValidator(SourceAddressProbe probe, IInterceptionProbe? interception = null)
{
    /// <summary>How long a host-name upstream may take to resolve during validation.</summary>
    public static readonly TimeSpan ResolveTimeout = TimeSpan.FromSeconds(3);

    public async Task<ValidationResult> ValidateAsync(ProxyConfig config, CancellationToken cancellationToken)
    {
        var errors = new List<ConfigError>();
        var warnings = new List<string>();
        var routes = new List<RouteModel>();
        var resolved = new Dictionary<string, IPAddress[]>(StringComparer.Ordinal);

        foreach (var unknown in config.UnknownKeys)
        {
            if (DescribeUnknownKey(unknown) is { } message)
            {
                errors.Add(new ConfigError("", unknown.Path, message));
            }
        }

        if (config.Routes.Count == 0)
        {
            errors.Add(new ConfigError("", "BindProxy:Routes", "no routes are configured; add one under BindProxy:Routes or use --listen/--upstream/--source"));
        }

        foreach (var route in config.Routes)
        {
            var model = await ValidateRouteAsync(route, errors, warnings, resolved, cancellationToken).ConfigureAwait(false);
            if (model is not null)
            {
                routes.Add(model);
            }
        }

        CheckDuplicateListeners(routes, errors);
        CheckInterceptions(routes, errors);
        var admin = ValidateAdmin(config.Admin, routes, errors, warnings);
        CheckLoops(routes, resolved, admin, errors);

        var drainTimeout = ProxyDefaults.DrainTimeout;
        if (config.DrainTimeout is { } drainText &&
            (!TimeSpan.TryParse(drainText, CultureInfo.InvariantCulture, out drainTimeout) || drainTimeout < TimeSpan.Zero))
        {
            errors.Add(new ConfigError("", "BindProxy:DrainTimeout", $"'{drainText}' is not a duration such as 00:00:30"));
        }

        var engine = ValidateEngine(config.Engine, errors);
        return new ValidationResult(errors.Count == 0 ? new ProxyModel(routes, drainTimeout) { Admin = admin, Engine = engine! } : null, errors, warnings);
    }

    private static ForwardingEngine? ValidateEngine(string? text, List<ConfigError> errors)
    {
        var setting = EngineSetting.Auto;
        if (text is not null && !ForwardingEngine.TryParse(text, out setting))
        {
            errors.Add(new ConfigError("", "BindProxy:Engine", $"'{text}' is not an engine; expected {ForwardingEngine.Expected}"));
            return null;
        }

        var engine = ForwardingEngine.Select(setting, out var error);
        if (engine is null)
        {
            errors.Add(new ConfigError("", "BindProxy:Engine", error!));
        }

        return engine;
    }

    /// <summary>
    /// The admin endpoint has no authentication and shows every client's addresses, so it listens
    /// on loopback unless the user says otherwise in so many words.
    /// </summary>
    private static AdminModel? ValidateAdmin(AdminConfig? admin, List<RouteModel> routes, List<ConfigError> errors, List<string> warnings)
    {
        if (admin is null)
        {
            return null;
        }

        void Error(string field, string message) => errors.Add(new ConfigError("", $"{AdminConfig.SectionName}:{field}", message));

        foreach (var unknown in admin.UnknownFields)
        {
            Error(unknown, UnknownField(unknown, AdminConfig.Fields));
        }

        bool allowNonLoopback = false;
        if (admin.AllowNonLoopback is { } allowText && !bool.TryParse(allowText, out allowNonLoopback))
        {
            Error("AllowNonLoopback", $"'{allowText}' is not true or false");
        }

        if (admin.Listen is null)
        {
            Error("Listen", "is missing; expected ADDR:PORT such as 127.0.0.1:9901, or off");
            return null;
        }

        if (string.Equals(admin.Listen.Trim(), "off", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        if (!EndpointSpec.TryParse(admin.Listen, allowPortZero: true, out var spec, out var error))
        {
            Error("Listen", error);
            return null;
        }

        if (spec.Count != 1)
        {
            Error("Listen", $"'{admin.Listen}' is {spec.Count} endpoints; the admin endpoint listens on one ADDR:PORT");
            return null;
        }

        var endpoint = spec[0];
        if (!IPAddress.IsLoopback(endpoint.Address))
        {
            if (!allowNonLoopback)
            {
                Error("Listen", $"{endpoint} is not a loopback address; the admin endpoint has no authentication and shows every client's addresses. " +
                    "Listen on 127.0.0.1 or [::1], or set Admin:AllowNonLoopback to true to expose it");
                return null;
            }

            warnings.Add($"{AdminConfig.SectionName}:Listen: {endpoint} is reachable from other machines, and the admin endpoint has no authentication");
        }

        var clash = routes.FirstOrDefault(r => r.Listen.Endpoints.Any(e => endpoint.Port != 0 && e.Port == endpoint.Port &&
            e.AddressFamily == endpoint.AddressFamily && (e.Address.Equals(endpoint.Address) || IsAny(e.Address) || IsAny(endpoint.Address))));
        if (clash is not null)
        {
            Error("Listen", $"{endpoint} is also a listen endpoint of route '{clash.Name}'");
            return null;
        }

        return new AdminModel(endpoint, allowNonLoopback);
    }

    private async Task<RouteModel?> ValidateRouteAsync(RouteConfig route, List<ConfigError> errors, List<string> warnings,
        Dictionary<string, IPAddress[]> resolved, CancellationToken cancellationToken)
    {
        int before = errors.Count;
        void Error(string field, string message) => errors.Add(new ConfigError(route.Name, field, message));

        foreach (var unknown in route.UnknownFields)
        {
            Error(unknown, UnknownField(unknown, RouteFields.Names));
        }

        foreach (var (field, expected, found) in route.MisshapenFields)
        {
            Error(field, $"expected {expected}, found {found}");
        }

        EndpointSpec? listen = null;
        if (route.Listen is null)
        {
            Error("Listen", "is missing; expected ADDR:PORT, e.g. 127.0.0.1:19092");
        }
        else if (!EndpointSpec.TryParse(route.Listen, allowPortZero: true, out listen, out var error))
        {
            Error("Listen", error);
        }

        UpstreamSpec? upstream = null;
        if (route.Intercept is not null)
        {
            // Each connection's upstream is where it was going; a configured one would go unused.
            if (route.Upstream is not null)
            {
                Error("Upstream", "an intercepting route connects each connection to its original destination; remove Upstream (or Intercept)");
            }
        }
        else if (route.Upstream is null)
        {
            Error("Upstream", "is missing; expected HOST:PORT, e.g. localhost:9092 (or Intercept, to serve redirected connections)");
        }
        else if (!UpstreamSpec.TryParse(route.Upstream, out upstream, out var error))
        {
            Error("Upstream", error);
        }

        AddressSet? sources = null;
        if (route.Source is null)
        {
            Error("Source", "is missing; expected an address such as 127.0.0.2, a range, a CIDR block or a list");
        }
        else if (!AddressSet.TryParse(route.Source, out sources, out var error))
        {
            Error("Source", error);
        }
        else
        {
            foreach (var problem in probe.CheckAssigned(sources))
            {
                Error("Source", problem);
            }
        }

        var protocol = RouteProtocol.Tcp;
        if (route.Protocol is { } protocolText && !Enum.TryParse(protocolText, ignoreCase: true, out protocol))
        {
            Error("Protocol", $"'{protocolText}' is not a protocol; expected Tcp, Kafka or Http");
        }
        else if (!Enum.IsDefined(protocol))
        {
            Error("Protocol", $"'{route.Protocol}' is not a protocol; expected Tcp, Kafka or Http");
        }

        var connectTimeout = ProxyDefaults.ConnectTimeout;
        if (route.ConnectTimeout is { } timeoutText &&
            (!TimeSpan.TryParse(timeoutText, CultureInfo.InvariantCulture, out connectTimeout) || connectTimeout <= TimeSpan.Zero))
        {
            Error("ConnectTimeout", $"'{timeoutText}' is not a positive duration such as 00:00:10");
        }

        TimeSpan? idleTimeout = null;
        if (route.IdleTimeout is { } idleText)
        {
            if (TimeSpan.TryParse(idleText, CultureInfo.InvariantCulture, out var idle) && idle > TimeSpan.Zero)
            {
                idleTimeout = idle;
            }
            else
            {
                Error("IdleTimeout", $"'{idleText}' is not a positive duration such as 00:05:00");
            }
        }

        int? maxConnections = null;
        if (route.MaxConnections is { } maxText)
        {
            if (int.TryParse(maxText, CultureInfo.InvariantCulture, out int max) && max > 0)
            {
                maxConnections = max;
            }
            else
            {
                Error("MaxConnections", $"'{maxText}' is not a positive whole number");
            }
        }

        int? maxPerClient = null;
        if (route.MaxConnectionsPerClient is { } perClientText)
        {
            if (int.TryParse(perClientText, CultureInfo.InvariantCulture, out int perClient) && perClient > 0)
            {
                maxPerClient = perClient;
            }
            else
            {
                Error("MaxConnectionsPerClient", $"'{perClientText}' is not a positive whole number");
            }
        }

        var kafka = ValidateKafka(route, protocol, listen, Error);
        var assignment = ValidateAssignment(route, protocol, sources, Error);
        var http = ValidateHttp(route, protocol, Error);
        var intercept = ValidateIntercept(route, protocol, listen, sources, Error);
        if (intercept is not null)
        {
            upstream = UpstreamSpec.OriginalDestination(intercept.Ports);
        }

        if (sources is not null && upstream is not null && intercept is null &&
            await CheckFamilyAsync(route.Name, sources, upstream, errors, warnings, cancellationToken).ConfigureAwait(false) is { } addresses)
        {
            resolved[route.Name] = addresses;
        }

        if (errors.Count != before || listen is null || upstream is null || sources is null)
        {
            return null;
        }

        return new RouteModel
        {
            Config = route,
            Name = route.Name,
            Listen = listen,
            Upstream = upstream,
            Sources = new SourcePool(sources),
            Protocol = protocol,
            ConnectTimeout = connectTimeout,
            MaxConnections = maxConnections,
            MaxConnectionsPerClient = maxPerClient,
            IdleTimeout = idleTimeout,
            Assignment = assignment,
            Kafka = kafka,
            Http = http,
            Intercept = intercept,
        };
    }

    /// <summary>The keys of a route's <c>Intercept</c> section.</summary>
    internal static readonly string[] InterceptKeys = ["Ports", "Cgroup", "Uid"];

    /// <summary>
    /// An intercepting route: the ports, exactly one selector (never none: every process would
    /// include the proxy, whose upstream connections go to the same ports), a listener where a
    /// redirect lands, and a machine that can install the rules.
    /// </summary>
    private InterceptSettings? ValidateIntercept(RouteConfig route, RouteProtocol protocol, EndpointSpec? listen, AddressSet? sources, Action<string, string> error)
    {
        if (route.Intercept is not { } written || route.MisshapenFields.Any(m => m.Field == nameof(RouteConfig.Intercept)))
        {
            return null;
        }

        string? Value(string key) => written.FirstOrDefault(kv => string.Equals(kv.Key, key, StringComparison.OrdinalIgnoreCase)).Value;
        foreach (var key in written.Keys.Where(k => !InterceptKeys.Contains(k, StringComparer.OrdinalIgnoreCase)))
        {
            error($"Intercept:{key}", KeySuggestions.Closest(key, InterceptKeys) is { } near
                ? $"unknown key; did you mean {near}?"
                : $"unknown key; Intercept takes {string.Join(", ", InterceptKeys)}");
        }

        var ports = PortSet.Empty;
        if (Value("Ports") is not { } portsText)
        {
            error("Intercept:Ports", "is missing; expected the destination ports to redirect, e.g. 9092-9094,8081");
        }
        else if (!PortSet.TryParse(portsText, out ports, out var portsError))
        {
            error("Intercept:Ports", portsError);
        }

        InterceptSelector? selector = null;
        var (cgroupText, uidText) = (Value("Cgroup"), Value("Uid"));
        if (cgroupText is null && uidText is null)
        {
            error("Intercept", "has no selector; give Cgroup (a cgroup v2 group, e.g. /sys/fs/cgroup/kafka-clients) or Uid (the user the clients run as). " +
                "Intercepting every process would redirect the proxy's own upstream connections, which go to the same ports, back into it");
        }
        else if (cgroupText is not null && uidText is not null)
        {
            error("Intercept", "has both Cgroup and Uid; give one (two routes intercept both)");
        }
        else if (cgroupText is not null)
        {
            string cgroupError = "cannot be checked here";
            if (interception is not null && (selector = interception.FindCgroup(cgroupText, out cgroupError)) is null)
            {
                error("Intercept:Cgroup", cgroupError);
            }
        }
        else if (!int.TryParse(uidText, NumberStyles.None, CultureInfo.InvariantCulture, out int uid))
        {
            error("Intercept:Uid", $"'{uidText}' is not a user id; expected a whole number such as 1000");
        }
        else if (uid == interception?.OwnUid)
        {
            error("Intercept:Uid", $"{uid} is the proxy's own uid, so its upstream connections would be redirected back into it; run the clients as another user, or select them by Cgroup");
        }
        else
        {
            selector = new InterceptSelector.Uid(uid);
        }

        if (protocol == RouteProtocol.Http)
        {
            error("Intercept", "applies to Tcp and Kafka routes; an Http route forwards every request to its Upstream");
        }

        // Broker listeners are not made for an intercepting route: brokers keep their addresses.
        foreach (var (field, value) in new[] { ("BrokerPorts", route.BrokerPorts), ("AdvertisedHost", route.AdvertisedHost), ("AllowedBrokers", route.AllowedBrokers) })
        {
            if (protocol == RouteProtocol.Kafka && value is not null)
            {
                error(field, "does not apply to an intercepting route: brokers keep the addresses they advertise, and their ports join the intercepted ones");
            }
        }

        if (listen is not null)
        {
            CheckInterceptListen(listen, sources, error);
        }

        if (interception is null)
        {
            error("Intercept", "interception is not available here");
        }
        else if (interception.Missing() is { Count: > 0 } missing)
        {
            error("Intercept", $"the rules cannot be installed: this process lacks {string.Join("; ", missing)}. {interception.HowToGrant}");
        }

        return selector is null || ports.IsEmpty ? null : new InterceptSettings(ports, selector);
    }

    /// <summary>
    /// A redirect sends a connection to the listener's port on the loopback address of its family
    /// (127.0.0.1, [::1]): the route listens there (or on a wildcard), on one port per family, and
    /// its sources can reach what arrives.
    /// </summary>
    private static void CheckInterceptListen(EndpointSpec listen, AddressSet? sources, Action<string, string> error)
    {
        const string Where = "redirected connections arrive at 127.0.0.1 and [::1] (a wildcard 0.0.0.0 or [::] receives them too), e.g. \"Listen\": \"127.0.0.1:0,[::1]:0\"";
        var families = new HashSet<AddressFamily>();
        foreach (var endpoint in listen.Endpoints)
        {
            var address = endpoint.Address;
            if (!address.Equals(IPAddress.Loopback) && !address.Equals(IPAddress.IPv6Loopback) && !IsAny(address))
            {
                error("Listen", $"{endpoint}: an intercepting route listens where {Where}");
            }
            else if (!families.Add(endpoint.AddressFamily))
            {
                error("Listen", $"{endpoint}: an intercepting route has one listener per address family; {Where}");
            }
            else if (sources is not null && endpoint.AddressFamily != sources.Family)
            {
                error("Listen", $"{endpoint} would receive {FamilyName(endpoint.AddressFamily)} connections, which cannot leave from the {FamilyName(sources.Family)} Source {sources}");
            }
        }
    }

    internal static readonly string[] AssignNames = ["round-robin", "client-address", "process", "kafka-client-id"];

    internal static bool TryParseAssign(string text, out AssignPolicy policy)
    {
        int index = Array.FindIndex(AssignNames, n => string.Equals(n, text.Trim(), StringComparison.OrdinalIgnoreCase)
            || string.Equals(n.Replace("-", "", StringComparison.Ordinal), text.Trim(), StringComparison.OrdinalIgnoreCase));
        policy = index < 0 ? AssignPolicy.RoundRobin : (AssignPolicy)index;
        return index >= 0;
    }

    private static AssignmentSettings ValidateAssignment(RouteConfig route, RouteProtocol protocol, AddressSet? sources, Action<string, string> error)
    {
        var policy = AssignPolicy.RoundRobin;
        if (route.Assign is { } assignText && !TryParseAssign(assignText, out policy))
        {
            error("Assign", $"'{assignText}' is not a policy; expected one of {string.Join(", ", AssignNames)}");
        }

        if (policy == AssignPolicy.KafkaClientId && protocol != RouteProtocol.Kafka)
        {
            error("Assign", "kafka-client-id needs \"Protocol\": \"Kafka\"");
        }

        if (policy == AssignPolicy.Process && !ProcessLookup.IsSupported)
        {
            error("Assign", "process needs Linux (/proc); use client-address elsewhere");
        }

        var whenExhausted = ExhaustedPolicy.Share;
        if (route.WhenExhausted is { } exhaustedText && !Enum.TryParse(exhaustedText, ignoreCase: true, out whenExhausted))
        {
            error("WhenExhausted", $"'{exhaustedText}' is not a fallback; expected share or refuse");
        }

        var idle = TimeSpan.FromMinutes(10);
        if (route.AssignmentIdleTimeout is { } idleText &&
            (!TimeSpan.TryParse(idleText, CultureInfo.InvariantCulture, out idle) || idle <= TimeSpan.Zero))
        {
            error("AssignmentIdleTimeout", $"'{idleText}' is not a positive duration such as 00:10:00");
        }

        var clientIds = new Dictionary<string, IPAddress>(StringComparer.Ordinal);
        if (route.ClientIds is { Count: > 0 } ids)
        {
            if (policy != AssignPolicy.KafkaClientId)
            {
                error("ClientIds", "applies only with \"Assign\": \"kafka-client-id\"");
            }

            foreach (var (id, addressText) in ids)
            {
                if (addressText is null || !AddressSet.TryParseAddress(addressText, out var address))
                {
                    error($"ClientIds:{id}", $"'{addressText}' is not an IP address");
                }
                else if (sources is not null && !sources.Contains(address))
                {
                    error($"ClientIds:{id}", $"{address} is not in the route's Source pool {sources}");
                }
                else if (clientIds.ContainsValue(address))
                {
                    error($"ClientIds:{id}", $"{address} is already pinned to client '{clientIds.First(kv => kv.Value.Equals(address)).Key}'");
                }
                else
                {
                    clientIds[id] = address;
                }
            }
        }

        return new AssignmentSettings { Policy = policy, ClientIds = clientIds, WhenExhausted = whenExhausted, IdleTimeout = idle };
    }

    private static HttpRouteSettings? ValidateHttp(RouteConfig route, RouteProtocol protocol, Action<string, string> error)
    {
        if (protocol != RouteProtocol.Http)
        {
            RefuseFieldsOf(RouteProtocol.Http, route, error);
            return null;
        }

        bool xForwarded = true;
        if (route.XForwarded is { } xForwardedText && !bool.TryParse(xForwardedText, out xForwarded))
        {
            error("XForwarded", $"'{xForwardedText}' is neither true nor false");
        }

        var requestTimeout = ProxyDefaults.RequestTimeout;
        if (route.RequestTimeout is { } timeoutText &&
            (!TimeSpan.TryParse(timeoutText, CultureInfo.InvariantCulture, out requestTimeout) || requestTimeout <= TimeSpan.Zero))
        {
            error("RequestTimeout", $"'{timeoutText}' is not a positive duration such as 00:01:40");
        }

        return new HttpRouteSettings { XForwarded = xForwarded, RequestTimeout = requestTimeout };
    }

    private static KafkaRouteSettings? ValidateKafka(RouteConfig route, RouteProtocol protocol, EndpointSpec? listen, Action<string, string> error)
    {
        if (protocol != RouteProtocol.Kafka)
        {
            RefuseFieldsOf(RouteProtocol.Kafka, route, error);
            return null;
        }

        (int First, int Last)? brokerPorts = null;
        if (route.BrokerPorts is { } portsText)
        {
            var parts = portsText.Split('-', 2, StringSplitOptions.TrimEntries);
            if (parts.Length == 2 && int.TryParse(parts[0], CultureInfo.InvariantCulture, out int first) && int.TryParse(parts[1], CultureInfo.InvariantCulture, out int last)
                && first is >= 1 and <= 65535 && last is >= 1 and <= 65535 && first <= last)
            {
                brokerPorts = (first, last);
                if (listen is not null && listen.Endpoints.Any(e => e.Port >= first && e.Port <= last))
                {
                    error("BrokerPorts", $"{first}-{last} overlaps the route's own Listen port");
                }
            }
            else
            {
                error("BrokerPorts", $"'{portsText}' is not a port range such as 19093-19120");
            }
        }

        if (route.AdvertisedHost is { } host && Uri.CheckHostName(host.Trim('[', ']')) == UriHostNameType.Unknown)
        {
            error("AdvertisedHost", $"'{host}' is neither a host name nor an IP address");
        }

        int maxFrameSize = ProxyDefaults.MaxFrameSize;
        if (route.MaxFrameSize is { } sizeText &&
            (!int.TryParse(sizeText, CultureInfo.InvariantCulture, out maxFrameSize) || maxFrameSize < 1024))
        {
            error("MaxFrameSize", $"'{sizeText}' is not a size in bytes of at least 1024 (default {ProxyDefaults.MaxFrameSize})");
        }

        var frameTimeout = ProxyDefaults.FrameTimeout;
        if (route.FrameTimeout is { } frameText &&
            (!TimeSpan.TryParse(frameText, CultureInfo.InvariantCulture, out frameTimeout) || frameTimeout <= TimeSpan.Zero))
        {
            error("FrameTimeout", $"'{frameText}' is not a positive duration such as 00:00:30");
        }

        BrokerAllowlist? allowedBrokers = null;
        if (route.AllowedBrokers is { } allowedText && !BrokerAllowlist.TryParse(allowedText, out allowedBrokers, out var allowError))
        {
            error("AllowedBrokers", allowError);
        }

        return new KafkaRouteSettings
        {
            BrokerPorts = brokerPorts, AdvertisedHost = route.AdvertisedHost, MaxFrameSize = maxFrameSize, FrameTimeout = frameTimeout, AllowedBrokers = allowedBrokers,
        };
    }

    /// <summary>Checks that the sources can reach the upstream; returns what a host name resolved to (null: a literal, or unresolved).</summary>
    private static async Task<IPAddress[]?> CheckFamilyAsync(string route, AddressSet sources, UpstreamSpec upstream, List<ConfigError> errors, List<string> warnings, CancellationToken cancellationToken)
    {
        if (upstream.LiteralFamily is { } literal)
        {
            if (literal != sources.Family)
            {
                errors.Add(new ConfigError(route, "Source", $"{sources} is {FamilyName(sources.Family)} but Upstream {upstream} is {FamilyName(literal)}; a socket bound to one family cannot reach the other"));
            }

            return null;
        }

        IPAddress[] addresses;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(ResolveTimeout);
            addresses = await Dns.GetHostAddressesAsync(upstream.Host!, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            warnings.Add($"route '{route}': Upstream: cannot resolve '{upstream.Host}' now ({e.Message}); it is resolved again at each connection");
            return null;
        }

        if (!addresses.Any(a => (a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a).AddressFamily == sources.Family))
        {
            errors.Add(new ConfigError(route, "Source", $"{sources} is {FamilyName(sources.Family)} but Upstream '{upstream.Host}' resolves only to {string.Join(", ", addresses.Select(a => a.ToString()))}; a socket bound to one family cannot reach the other"));
        }

        return addresses;
    }

    /// <summary>Fields set on a route of another protocol than the one they belong to, from the field table.</summary>
    private static void RefuseFieldsOf(RouteProtocol protocol, RouteConfig route, Action<string, string> error)
    {
        foreach (var field in RouteFields.All.Where(f => f.OnlyFor == protocol && f.Get(route) is not null))
        {
            error(field.Name, $"applies to {protocol} routes only; set \"Protocol\": \"{protocol}\" or remove it");
        }
    }

    private static string UnknownField(string key, IReadOnlyList<string> known) =>
        KeySuggestions.Closest(key, known) is { } near
            ? $"unknown field; did you mean {near}?"
            : $"unknown field; known fields are {string.Join(", ", known)}";

    /// <summary>
    /// The error for a key nothing reads, or null for a top-level section that is not the proxy's
    /// (other tools' sections and <c>BINDPROXY_</c> variables such as <c>BINDPROXY_REQUIRE_ALL</c>
    /// are left alone) and not a near miss of one of its own names.
    /// </summary>
    private static string? DescribeUnknownKey(UnknownKey unknown)
    {
        var key = unknown.Key;
        if (unknown.TopLevel)
        {
            if (KeySuggestions.Closest(key, unknown.Known) is { } section)
            {
                return $"unknown section; did you mean {section}?";
            }

            if (KeySuggestions.Closest(key, ConfigReader.ProxyKeys) is { } proxyKey)
            {
                return $"unknown section; {proxyKey} goes inside the {ConfigReader.SectionName} section ({ConfigReader.SectionName}:{proxyKey})";
            }

            return null;
        }

        if (KeySuggestions.Closest(key, unknown.Known) is { } near)
        {
            return $"unknown key; did you mean {near}?";
        }

        if (RouteFields.Find(key) is not null)
        {
            return $"unknown key; route fields such as {key} go inside a route, {ConfigReader.SectionName}:Routes:NAME:{key}";
        }

        return $"unknown key; known keys are {string.Join(", ", unknown.Known)}";
    }

    /// <summary>
    /// A route whose upstream is one of the proxy's own listen endpoints (a route's, a Kafka route's
    /// broker ports, the admin endpoint) would connect to itself once for every connection that
    /// loop brings in, until descriptors run out. Host names are checked as they resolve now; the
    /// connector checks every connection again at run time.
    /// </summary>
    private void CheckLoops(List<RouteModel> routes, Dictionary<string, IPAddress[]> resolved, AdminModel? admin, List<ConfigError> errors)
    {
        const string Loop = "every connection would come back into the proxy and connect again, without end";
        var own = new List<(IPAddress Address, int First, int Last, string What, string Why)>();
        foreach (var route in routes)
        {
            foreach (var endpoint in route.Listen.Endpoints.Where(e => e.Port != 0))
            {
                own.Add((endpoint.Address, endpoint.Port, endpoint.Port, $"a listen endpoint of route '{route.Name}'", Loop));
            }

            if (route.Kafka?.BrokerPorts is var (first, last))
            {
                foreach (var address in route.Listen.Endpoints.Select(e => e.Address).Distinct())
                {
                    own.Add((address, first, last, $"a broker port of route '{route.Name}' (BrokerPorts {first}-{last})", Loop));
                }
            }
        }

        if (admin is { Listen.Port: not 0 })
        {
            own.Add((admin.Listen.Address, admin.Listen.Port, admin.Listen.Port, "the admin endpoint", "the route would hand its clients to the proxy's own status page"));
        }

        var ports = own.SelectMany(o => Enumerable.Range(o.First, o.Last - o.First + 1)).ToHashSet();
        foreach (var route in routes)
        {
            var destinations = route.Upstream.Endpoints?.Endpoints
                ?? (resolved.TryGetValue(route.Name, out var addresses)
                    ? addresses.Select(a => a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a).Where(a => a.AddressFamily == route.Family).Select(a => new IPEndPoint(a, route.Upstream.Port))
                    : []);
            foreach (var destination in destinations.Where(d => ports.Contains(d.Port)))
            {
                var hit = own.FirstOrDefault(o => destination.Port >= o.First && destination.Port <= o.Last &&
                    OwnListeners.Covers(o.Address, destination.Address, probe.IsAssigned));
                if (hit.What is not null)
                {
                    var what = route.Upstream.Host is { } host ? $"'{host}' resolves to {destination}, which" : $"{destination}";
                    errors.Add(new ConfigError(route.Name, "Upstream", $"{what} is {hit.What} of this proxy: {hit.Why}"));
                    break;
                }
            }
        }
    }

    /// <summary>
    /// Two routes that intercept the same processes' connections to the same port over the same
    /// address family: the first rule takes them all. And ports of the proxy's own listeners: a
    /// client connecting to one would be redirected away from it.
    /// </summary>
    private static void CheckInterceptions(List<RouteModel> routes, List<ConfigError> errors)
    {
        var intercepting = routes.Where(r => r.Intercept is not null).ToList();
        for (int i = 0; i < intercepting.Count; i++)
        {
            var route = intercepting[i];
            var ports = route.Intercept!.Ports;
            if (intercepting.Take(i).FirstOrDefault(r => r.Family == route.Family && r.Intercept!.Selector == route.Intercept.Selector && r.Intercept.Ports.Overlaps(ports)) is { } earlier)
            {
                errors.Add(new ConfigError(route.Name, "Intercept:Ports", $"route '{earlier.Name}' already intercepts {route.Intercept.Selector}'s connections to {earlier.Intercept!.Ports}, which overlaps {ports}"));
            }

            if (routes.SelectMany(r => r.Listen.Endpoints.Select(e => (Route: r, e.Port))).FirstOrDefault(l => l.Port != 0 && ports.Contains(l.Port)) is { Route: { } owner } listener)
            {
                errors.Add(new ConfigError(route.Name, "Intercept:Ports", $"{ports} includes {listener.Port}, a listen port of route '{owner.Name}' of this proxy: connections to it would be redirected away from it"));
            }
        }
    }

    private static void CheckDuplicateListeners(List<RouteModel> routes, List<ConfigError> errors)
    {
        var seen = new Dictionary<IPEndPoint, string>();
        foreach (var route in routes)
        {
            foreach (var endpoint in route.Listen.Endpoints.Where(e => e.Port != 0))
            {
                var clash = seen.FirstOrDefault(kv => kv.Key.Port == endpoint.Port && kv.Key.AddressFamily == endpoint.AddressFamily &&
                    (kv.Key.Address.Equals(endpoint.Address) || IsAny(kv.Key.Address) || IsAny(endpoint.Address)));
                if (clash.Key is not null)
                {
                    errors.Add(new ConfigError(route.Name, "Listen", clash.Value == route.Name
                        ? $"lists {endpoint} twice"
                        : $"{endpoint} is also a listen endpoint of route '{clash.Value}'"));
                    continue;
                }

                seen[endpoint] = route.Name;
            }
        }
    }

    private static bool IsAny(IPAddress address) => address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any);

    internal static string FamilyName(AddressFamily family) => family == AddressFamily.InterNetworkV6 ? "IPv6" : "IPv4";
}
