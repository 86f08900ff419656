using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using BindProxy.Addressing;

namespace BindProxy.Configuration;

/// <summary>
/// Turns <see cref="ProxyConfig"/> into a <see cref="ProxyModel"/>, collecting every problem
/// (no short-circuit) so the user fixes the file once. Field names, the examples messages give
/// and the value of a field that is not set come from the field's definition
/// (<see cref="ConfigFieldAttribute"/>): an absent field reads as its <c>Default</c>, through the
/// same code as a written one.
/// </summary>
/// <param name="interception">What the machine offers intercepting routes; without it such a route is refused.</param>
/// <param name="toxics">The fault API's rules for a toxic; without them a route's <c>Faults</c> is refused.</param>
internal sealed class ConfigValidator(SourceAddressProbe probe, IInterceptionProbe? interception = null, IToxicCheck? toxics = null)
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

        void TopLevelError(string path, string message) => errors.Add(new ConfigError("", path, message));

        if (config.Routes.Count == 0)
        {
            var routesKey = ProxyConfig.Fields[nameof(ProxyConfig.Routes)].Path;
            TopLevelError(routesKey, $"no routes are configured; add one under {routesKey} or use --listen/--upstream/--source");
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
        var faults = ValidateFaults(config.Faults, routes, admin, errors, warnings);
        var capture = ValidateCapture(config.Capture, routes, errors);
        CheckLoops(routes, resolved, admin, errors);

        var drainTimeout = Duration(ProxyConfig.Fields[nameof(ProxyConfig.DrainTimeout)], config.DrainTimeout, TopLevelError, positive: false);
        var flushTimeout = Duration(ProxyConfig.Fields[nameof(ProxyConfig.FlushTimeout)], config.FlushTimeout, TopLevelError, positive: true);
        var stallTimeout = Duration(ProxyConfig.Fields[nameof(ProxyConfig.StallTimeout)], config.StallTimeout, TopLevelError, positive: true);
        var engine = ValidateEngine(config.Engine, TopLevelError);
        return new ValidationResult(errors.Count == 0
            ? new ProxyModel(routes, drainTimeout) { Admin = admin, Faults = faults, Capture = capture, Engine = engine!.Value, FlushTimeout = flushTimeout!.Value, StallTimeout = stallTimeout!.Value }
            : null, errors, warnings);
    }

    private static EngineSetting? ValidateEngine(string? written, Action<string, string> error)
    {
        var field = ProxyConfig.Fields[nameof(ProxyConfig.Engine)];
        var text = written ?? field.Default!;
        if (!EngineSettings.TryParse(text, out var setting))
        {
            error(field.Path, $"'{text}' is not an engine; expected {EngineSettings.Expected}");
            return null;
        }

        var engine = EngineSettings.Resolve(setting, out var problem);
        if (engine is null)
        {
            error(field.Path, problem!);
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

        var fields = AdminConfig.Fields;
        var listenKey = fields[nameof(AdminConfig.Listen)];
        var allowKey = fields[nameof(AdminConfig.AllowNonLoopback)];
        void Error(string path, string message) => errors.Add(new ConfigError("", path, message));

        foreach (var unknown in admin.UnknownFields)
        {
            Error($"{fields.Section}:{unknown}", UnknownField(unknown, fields.Names));
        }

        var allowText = admin.AllowNonLoopback ?? allowKey.Default!;
        if (!bool.TryParse(allowText, out bool allowNonLoopback))
        {
            Error(allowKey.Path, $"'{allowText}' is not true or false");
        }

        if (admin.Listen is null)
        {
            Error(listenKey.Path, $"is missing; expected ADDR:PORT such as {listenKey.Example}, or {AdminOff}");
            return null;
        }

        if (string.Equals(admin.Listen.Trim(), AdminOff, StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        if (!EndpointSpec.TryParse(admin.Listen, allowPortZero: true, out var spec, out var error))
        {
            Error(listenKey.Path, error);
            return null;
        }

        if (spec.Count != 1)
        {
            Error(listenKey.Path, $"'{admin.Listen}' is {spec.Count} endpoints; the admin endpoint listens on one ADDR:PORT");
            return null;
        }

        var endpoint = spec[0];
        if (!IPAddress.IsLoopback(endpoint.Address))
        {
            if (!allowNonLoopback)
            {
                Error(listenKey.Path, $"{endpoint} is not a loopback address; the admin endpoint has no authentication and shows every client's addresses. " +
                    $"Listen on 127.0.0.1 or [::1], or set {allowKey.Path} to true to expose it");
                return null;
            }

            warnings.Add($"{listenKey.Path}: {endpoint} is reachable from other machines, and the admin endpoint has no authentication");
        }

        var clash = routes.FirstOrDefault(r => r.Listen.Endpoints.Any(e => endpoint.Port != 0 && e.Port == endpoint.Port &&
            e.AddressFamily == endpoint.AddressFamily && (e.Address.Equals(endpoint.Address) || IsAny(e.Address) || IsAny(endpoint.Address))));
        if (clash is not null)
        {
            Error(listenKey.Path, $"{endpoint} is also a listen endpoint of route '{clash.Name}'");
            return null;
        }

        return new AdminModel(endpoint, allowNonLoopback);
    }

    /// <summary>
    /// The fault API can break every route's traffic and has no authentication: like the admin
    /// endpoint, it listens on loopback unless the user says otherwise in so many words.
    /// </summary>
    private static FaultsModel? ValidateFaults(FaultsConfig? faults, List<RouteModel> routes, AdminModel? admin, List<ConfigError> errors, List<string> warnings)
    {
        if (faults is null)
        {
            return null;
        }

        var fields = FaultsConfig.Fields;
        var listenKey = fields[nameof(FaultsConfig.Listen)];
        var allowKey = fields[nameof(FaultsConfig.AllowNonLoopback)];
        void Error(string path, string message) => errors.Add(new ConfigError("", path, message));

        foreach (var unknown in faults.UnknownFields)
        {
            Error($"{fields.Section}:{unknown}", UnknownField(unknown, fields.Names));
        }

        var allowText = faults.AllowNonLoopback ?? allowKey.Default!;
        if (!bool.TryParse(allowText, out bool allowNonLoopback))
        {
            Error(allowKey.Path, $"'{allowText}' is not true or false");
        }

        if (faults.Listen is null)
        {
            Error(listenKey.Path, $"is missing; expected ADDR:PORT such as {listenKey.Example}, or {AdminOff}");
            return null;
        }

        if (string.Equals(faults.Listen.Trim(), AdminOff, StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        if (!EndpointSpec.TryParse(faults.Listen, allowPortZero: true, out var spec, out var error))
        {
            Error(listenKey.Path, error);
            return null;
        }

        if (spec.Count != 1)
        {
            Error(listenKey.Path, $"'{faults.Listen}' is {spec.Count} endpoints; the fault API listens on one ADDR:PORT");
            return null;
        }

        var endpoint = spec[0];
        if (!IPAddress.IsLoopback(endpoint.Address))
        {
            if (!allowNonLoopback)
            {
                Error(listenKey.Path, $"{endpoint} is not a loopback address; the fault API has no authentication and can break every route's traffic. " +
                    $"Listen on 127.0.0.1 or [::1], or set {allowKey.Path} to true to expose it");
                return null;
            }

            warnings.Add($"{listenKey.Path}: {endpoint} is reachable from other machines, and the fault API has no authentication");
        }

        bool Same(IPEndPoint e) => endpoint.Port != 0 && e.Port == endpoint.Port &&
            e.AddressFamily == endpoint.AddressFamily && (e.Address.Equals(endpoint.Address) || IsAny(e.Address) || IsAny(endpoint.Address));
        if (routes.FirstOrDefault(r => r.Listen.Endpoints.Any(Same)) is { } clash)
        {
            Error(listenKey.Path, $"{endpoint} is also a listen endpoint of route '{clash.Name}'");
            return null;
        }

        if (admin is not null && Same(admin.Listen))
        {
            Error(listenKey.Path, $"{endpoint} is also the admin endpoint ({AdminConfig.Fields[nameof(AdminConfig.Listen)].Path})");
            return null;
        }

        return new FaultsModel(endpoint, allowNonLoopback);
    }

    /// <summary>
    /// Rolling capture files: the selectors read as <c>/api/capture</c> reads them, the bound on disk,
    /// and a directory that is made (if missing) and written to here, so one that cannot be is one
    /// line at startup, and a reload to it is rejected with the running capture kept.
    /// </summary>
    private static CaptureModel? ValidateCapture(CaptureConfig? capture, List<RouteModel> routes, List<ConfigError> errors)
    {
        if (capture is null)
        {
            return null;
        }

        var fields = CaptureConfig.Fields;
        int before = errors.Count;
        void Error(string name, string message) => errors.Add(new ConfigError("", fields[name].Path, message));

        foreach (var unknown in capture.UnknownFields)
        {
            errors.Add(new ConfigError("", $"{fields.Section}:{unknown}", UnknownField(unknown, fields.Names)));
        }

        AddressSet? source = null;
        if (capture.Source is { } sourceText && !AddressSet.TryParse(sourceText, out source, out var sourceError))
        {
            Error(nameof(CaptureConfig.Source), sourceError);
        }

        int? pid = null;
        if (capture.Pid is { } pidText)
        {
            if (int.TryParse(pidText, NumberStyles.None, CultureInfo.InvariantCulture, out int parsed) && parsed > 0)
            {
                pid = parsed;
            }
            else
            {
                Error(nameof(CaptureConfig.Pid), $"'{pidText}' is not a process id; expected a positive whole number such as {fields[nameof(CaptureConfig.Pid)].Example}");
            }
        }

        var route = string.IsNullOrWhiteSpace(capture.Route) ? null : capture.Route.Trim();
        if (route is not null && !routes.Any(r => r.Name == route))
        {
            Error(nameof(CaptureConfig.Route), $"no route is named '{route}'; the routes are {string.Join(", ", routes.Select(r => r.Name))}");
        }

        var legs = (capture.Legs ?? fields[nameof(CaptureConfig.Legs)].Default!).Trim().ToLowerInvariant();
        if (legs is not ("both" or "client" or "upstream"))
        {
            Error(nameof(CaptureConfig.Legs), $"'{capture.Legs}' is not both, client or upstream");
        }

        var rotateText = capture.RotateMB ?? fields[nameof(CaptureConfig.RotateMB)].Default!;
        long rotateBytes = 0;
        if (!double.TryParse(rotateText, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double megabytes) || megabytes < 0.01 || megabytes > 1024 * 1024)
        {
            Error(nameof(CaptureConfig.RotateMB), $"'{rotateText}' is not a size in megabytes from 0.01 up; expected a number such as {fields[nameof(CaptureConfig.RotateMB)].Example}");
        }
        else
        {
            rotateBytes = (long)(megabytes * 1024 * 1024);
        }

        var keepText = capture.KeepFiles ?? fields[nameof(CaptureConfig.KeepFiles)].Default!;
        if (!int.TryParse(keepText, NumberStyles.None, CultureInfo.InvariantCulture, out int keep) || keep < 1)
        {
            Error(nameof(CaptureConfig.KeepFiles), $"'{keepText}' is not a number of files; expected a whole number from 1 up such as {fields[nameof(CaptureConfig.KeepFiles)].Example}");
        }

        var directoryKey = fields[nameof(CaptureConfig.Directory)];
        if (string.IsNullOrWhiteSpace(capture.Directory))
        {
            Error(nameof(CaptureConfig.Directory), $"is missing; expected a directory such as {directoryKey.Example}, or {AdminOff}");
            return null;
        }

        if (string.Equals(capture.Directory.Trim(), AdminOff, StringComparison.OrdinalIgnoreCase) || errors.Count > before)
        {
            return null;
        }

        string directory;
        try
        {
            directory = Path.GetFullPath(capture.Directory.Trim());
            System.IO.Directory.CreateDirectory(directory);
            var probe = Path.Combine(directory, $".bindproxy-write-check-{Environment.ProcessId}");
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            Error(nameof(CaptureConfig.Directory), $"'{capture.Directory}' cannot be made or written: {e.Message}");
            return null;
        }

        return new CaptureModel(directory, route, string.IsNullOrWhiteSpace(capture.Client) ? null : capture.Client.Trim(), source, pid,
            string.IsNullOrWhiteSpace(capture.Process) ? null : capture.Process.Trim(), legs, rotateBytes, keep);
    }

    /// <summary>The <c>Admin:Listen</c> value that turns the admin endpoint off.</summary>
    private const string AdminOff = "off";

    private async Task<RouteModel?> ValidateRouteAsync(RouteConfig route, List<ConfigError> errors, List<string> warnings,
        Dictionary<string, IPAddress[]> resolved, CancellationToken cancellationToken)
    {
        int before = errors.Count;
        void Error(string field, string message) => errors.Add(new ConfigError(route.Name, field, message));

        foreach (var unknown in route.UnknownFields)
        {
            Error(unknown, UnknownField(unknown, RouteConfig.Fields.Names));
        }

        foreach (var (field, expected, found) in route.MisshapenFields)
        {
            Error(field, $"expected {expected}, found {found}");
        }

        EndpointSpec? listen = null;
        if (route.Listen is null)
        {
            Error(nameof(RouteConfig.Listen), $"is missing; expected ADDR:PORT, e.g. {Field(nameof(RouteConfig.Listen)).Example}");
        }
        else if (!EndpointSpec.TryParse(route.Listen, allowPortZero: true, out listen, out var error))
        {
            Error(nameof(RouteConfig.Listen), error);
        }

        UpstreamSpec? upstream = null;
        if (route.Intercept is not null)
        {
            // Each connection's upstream is where it was going; a configured one would go unused.
            if (route.Upstream is not null)
            {
                Error(nameof(RouteConfig.Upstream), $"an intercepting route connects each connection to its original destination; remove {nameof(RouteConfig.Upstream)} (or {nameof(RouteConfig.Intercept)})");
            }
        }
        else if (route.Upstream is null)
        {
            Error(nameof(RouteConfig.Upstream), $"is missing; expected HOST:PORT, e.g. {Field(nameof(RouteConfig.Upstream)).Example} (or {nameof(RouteConfig.Intercept)}, to serve redirected connections)");
        }
        else if (!UpstreamSpec.TryParse(route.Upstream, out upstream, out var error))
        {
            Error(nameof(RouteConfig.Upstream), error);
        }

        AddressSet? sources = null;
        if (route.Source is null)
        {
            Error(nameof(RouteConfig.Source), $"is missing; expected an address such as {Field(nameof(RouteConfig.Source)).Example}, a range, a CIDR block or a list");
        }
        else if (!AddressSet.TryParse(route.Source, out sources, out var error))
        {
            Error(nameof(RouteConfig.Source), error);
        }
        else
        {
            foreach (var problem in probe.CheckAssigned(sources))
            {
                Error(nameof(RouteConfig.Source), problem);
            }
        }

        var protocolField = Field(nameof(RouteConfig.Protocol));
        var protocolText = route.Protocol ?? protocolField.Default!;
        if (!Enum.TryParse(protocolText, ignoreCase: true, out RouteProtocol protocol) || !Enum.IsDefined(protocol))
        {
            Error(protocolField.Path, $"'{protocolText}' is not a protocol; expected {OneOf(protocolField)}");
        }

        var connectTimeout = Duration(Field(nameof(RouteConfig.ConnectTimeout)), route.ConnectTimeout, Error);
        var idleTimeout = Duration(Field(nameof(RouteConfig.IdleTimeout)), route.IdleTimeout, Error);
        var maxConnections = PositiveCount(Field(nameof(RouteConfig.MaxConnections)), route.MaxConnections, Error);
        var maxPerClient = PositiveCount(Field(nameof(RouteConfig.MaxConnectionsPerClient)), route.MaxConnectionsPerClient, Error);

        var kafka = ValidateKafka(route, protocol, listen, Error);
        var assignment = ValidateAssignment(route, protocol, sources, Error);
        var http = ValidateHttp(route, protocol, Error);
        var tls = ValidateTls(route, Error, warnings);
        var listenTls = ValidateListenTls(route, protocol, Error, warnings);
        var intercept = ValidateIntercept(route, protocol, listen, sources, Error);
        var routeToxics = RouteToxics.Validate(route, protocol, toxics, Error);
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
            ConnectTimeout = connectTimeout!.Value,
            MaxConnections = maxConnections,
            MaxConnectionsPerClient = maxPerClient,
            IdleTimeout = idleTimeout,
            Assignment = assignment,
            Kafka = kafka,
            Http = http,
            Tls = tls,
            ListenTls = listenTls,
            Intercept = intercept,
            Toxics = routeToxics,
        };
    }

    /// <summary>
    /// A route's <c>Tls</c> section: every key read and checked, the files loaded now (a missing
    /// file, a key without its certificate, a wrong password are errors with their key), and null
    /// when there is no section or it is not <c>Enabled</c>.
    /// </summary>
    private static TlsSettings? ValidateTls(RouteConfig route, Action<string, string> error, List<string> warnings)
    {
        if (route.Tls is not { } written || route.MisshapenFields.Any(m => m.Field == nameof(RouteConfig.Tls)))
        {
            return null;
        }

        var keys = TlsConfig.Fields;
        var (section, unknown) = TlsConfig.Read(written);
        UnknownSectionKeys(keys, unknown, error);
        bool enabled = Flag(keys[nameof(TlsConfig.Enabled)], section.Enabled, error);
        bool insecure = Flag(keys[nameof(TlsConfig.Insecure)], section.Insecure, error);
        var (protocols, minVersion) = MinVersion(keys[nameof(TlsConfig.MinVersion)], section.MinVersion, error);
        var handshake = Duration(keys[nameof(TlsConfig.HandshakeTimeout)], section.HandshakeTimeout, error);

        var serverNameKey = keys[nameof(TlsConfig.ServerName)];
        if (section.ServerName is { } serverName && Uri.CheckHostName(serverName.Trim('[', ']')) == UriHostNameType.Unknown)
        {
            error(serverNameKey.Path, $"'{serverName}' is neither a host name nor an IP address");
        }

        X509Certificate2Collection? cas = null;
        var caKey = keys[nameof(TlsConfig.CaFile)];
        if (section.CaFile is { } caFile)
        {
            cas = CertificateFiles.LoadTrust(caFile, section.Password, out var caError);
            if (caError is not null)
            {
                error(caKey.Path, caError);
            }
            else if (insecure)
            {
                warnings.Add($"route '{route.Name}': {caKey.Path} is not used: {keys[nameof(TlsConfig.Insecure)].Path} is true");
            }
        }

        var identity = Identity(keys, nameof(TlsConfig.CertificateFile), nameof(TlsConfig.KeyFile), nameof(TlsConfig.Password),
            section.CertificateFile, section.KeyFile, section.Password, passwordAlsoOpensCa: section.CaFile is not null, error);
        if (identity is var (clientCertificate, _))
        {
            WarnIfNotValidNow(route, keys[nameof(TlsConfig.CertificateFile)], clientCertificate, "the upstream refuses it", warnings);
        }

        if (insecure && enabled)
        {
            warnings.Add($"route '{route.Name}': {keys[nameof(TlsConfig.Insecure)].Path} is true: the upstream's certificate is not verified, so whoever sits between the proxy and it can read and change the traffic; for test clusters only");
        }

        return enabled ? new TlsSettings
        {
            TrustedCas = cas,
            CaFile = section.CaFile,
            ClientCertificate = identity?.Certificate,
            ClientChain = identity?.Chain ?? [],
            ServerName = section.ServerName?.Trim('[', ']'),
            Protocols = protocols,
            MinVersion = minVersion,
            Insecure = insecure,
            HandshakeTimeout = handshake ?? default,
        } : null;
    }

    /// <summary>A route's <c>ListenTls</c> section: the certificate and key are required, the client CAs optional.</summary>
    private static ListenTlsSettings? ValidateListenTls(RouteConfig route, RouteProtocol protocol, Action<string, string> error, List<string> warnings)
    {
        if (route.ListenTls is not { } written || route.MisshapenFields.Any(m => m.Field == nameof(RouteConfig.ListenTls)))
        {
            return null;
        }

        var keys = ListenTlsConfig.Fields;
        var (section, unknown) = ListenTlsConfig.Read(written);
        UnknownSectionKeys(keys, unknown, error);
        if (protocol == RouteProtocol.Http)
        {
            error(nameof(RouteConfig.ListenTls), "applies to Tcp and Kafka routes; an Http route's listeners serve plaintext HTTP/1.1 and HTTP/2");
        }

        bool enabled = Flag(keys[nameof(ListenTlsConfig.Enabled)], section.Enabled, error);
        var (protocols, minVersion) = MinVersion(keys[nameof(ListenTlsConfig.MinVersion)], section.MinVersion, error);
        var handshake = Duration(keys[nameof(ListenTlsConfig.HandshakeTimeout)], section.HandshakeTimeout, error);

        X509Certificate2Collection? clientCas = null;
        if (section.ClientCaFile is { } clientCaFile)
        {
            clientCas = CertificateFiles.LoadTrust(clientCaFile, password: null, out var caError);
            if (caError is not null)
            {
                error(keys[nameof(ListenTlsConfig.ClientCaFile)].Path, caError);
            }
        }

        var certificateKey = keys[nameof(ListenTlsConfig.CertificateFile)];
        if (section.CertificateFile is null)
        {
            error(certificateKey.Path, $"is missing; expected the certificate clients are shown, e.g. {certificateKey.Example} (bindproxy cert makes one)");
        }

        var identity = Identity(keys, nameof(ListenTlsConfig.CertificateFile), nameof(ListenTlsConfig.KeyFile), nameof(ListenTlsConfig.Password),
            section.CertificateFile, section.KeyFile, section.Password, passwordAlsoOpensCa: false, error);
        if (identity is not var (certificate, chain))
        {
            return null;
        }

        WarnIfNotValidNow(route, certificateKey, certificate, "clients refuse it", warnings);
        SslStreamCertificateContext context;
        try
        {
            context = SslStreamCertificateContext.Create(certificate, chain, offline: true,
                clientCas is null ? null : SslCertificateTrust.CreateForX509Collection(clientCas, sendTrustInHandshake: true));
        }
        catch (Exception e) when (e is CryptographicException or PlatformNotSupportedException or NotSupportedException)
        {
            error(certificateKey.Path, $"{section.CertificateFile} cannot serve TLS here: {e.Message}");
            return null;
        }

        return enabled ? new ListenTlsSettings
        {
            Certificate = certificate,
            Context = context,
            CertificateFile = section.CertificateFile!,
            ClientCas = clientCas,
            Protocols = protocols,
            MinVersion = minVersion,
            HandshakeTimeout = handshake ?? default,
        } : null;
    }

    /// <summary>A certificate with its key from a section's three keys; a key or password without a certificate is an error of its own.</summary>
    private static (X509Certificate2 Certificate, X509Certificate2Collection Chain)? Identity(FieldTable keys, string certName, string keyName, string passwordName,
        string? certFile, string? keyFile, string? password, bool passwordAlsoOpensCa, Action<string, string> error)
    {
        var (certKey, keyKey, passwordKey) = (keys[certName], keys[keyName], keys[passwordName]);
        if (certFile is null)
        {
            if (keyFile is not null)
            {
                error(keyKey.Path, $"is set without {certKey.Name}; give the certificate this key belongs to");
            }

            if (password is not null && keyFile is null && !passwordAlsoOpensCa)
            {
                error(passwordKey.Path, $"is set, but there is no {certKey.Name} or key for it to open");
            }

            return null;
        }

        var problems = new List<CertificateFiles.Problem>();
        var identity = CertificateFiles.LoadIdentity(certFile, keyFile, password, certKey.Name, keyKey.Name, passwordKey.Name, problems);
        foreach (var (key, message) in problems)
        {
            error(keys[key].Path, message);
        }

        return identity;
    }

    private static void WarnIfNotValidNow(RouteConfig route, ConfigField key, X509Certificate2 certificate, string consequence, List<string> warnings)
    {
        var now = DateTime.Now;
        if (certificate.NotAfter < now)
        {
            warnings.Add($"route '{route.Name}': {key.Path}: {certificate.Subject} expired on {certificate.NotAfter.ToUniversalTime():u}; {consequence} (bindproxy cert makes a new one)");
        }
        else if (certificate.NotBefore > now)
        {
            warnings.Add($"route '{route.Name}': {key.Path}: {certificate.Subject} is not valid before {certificate.NotBefore.ToUniversalTime():u}; {consequence} until then");
        }
    }

    private static void UnknownSectionKeys(FieldTable keys, IReadOnlyList<string> unknown, Action<string, string> error)
    {
        foreach (var key in unknown)
        {
            error($"{keys.Section}:{key}", KeySuggestions.Closest(key, keys.Names) is { } near
                ? $"unknown key; did you mean {near}?"
                : $"unknown key; {keys.Section} takes {string.Join(", ", keys.Names)}");
        }
    }

    /// <summary>A true/false key: the value written, else its default.</summary>
    private static bool Flag(ConfigField field, string? written, Action<string, string> error)
    {
        var text = written ?? field.Default!;
        if (bool.TryParse(text, out bool value))
        {
            return value;
        }

        error(field.Path, $"'{text}' is neither true nor false");
        return false;
    }

    private static (SslProtocols Protocols, string Text) MinVersion(ConfigField field, string? written, Action<string, string> error)
    {
        var text = written ?? field.Default!;
        if (TlsVersions.TryParse(text, out var protocols, out var problem))
        {
            return (protocols, protocols == SslProtocols.Tls13 ? "1.3" : "1.2");
        }

        error(field.Path, problem);
        return (TlsVersions.From12, TlsVersions.Default);
    }

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

        var section = InterceptConfig.Read(written);
        var keys = InterceptConfig.Fields;
        var (portsKey, cgroupKey, uidKey) = (keys[nameof(InterceptConfig.Ports)], keys[nameof(InterceptConfig.Cgroup)], keys[nameof(InterceptConfig.Uid)]);
        const string Intercept = nameof(RouteConfig.Intercept);
        foreach (var key in section.UnknownKeys)
        {
            error($"{keys.Section}:{key}", KeySuggestions.Closest(key, keys.Names) is { } near
                ? $"unknown key; did you mean {near}?"
                : $"unknown key; {Intercept} takes {string.Join(", ", keys.Names)}");
        }

        var ports = PortSet.Empty;
        if (section.Ports is not { } portsText)
        {
            error(portsKey.Path, $"is missing; expected the destination ports to redirect, e.g. {portsKey.Example}");
        }
        else if (!PortSet.TryParse(portsText, out ports, out var portsError))
        {
            error(portsKey.Path, portsError);
        }

        InterceptSelector? selector = null;
        var (cgroupText, uidText) = (section.Cgroup, section.Uid);
        if (cgroupText is null && uidText is null)
        {
            error(Intercept, $"has no selector; give {cgroupKey.Name} (a cgroup v2 group, e.g. {cgroupKey.Example}) or {uidKey.Name} (the user the clients run as). " +
                "Intercepting every process would redirect the proxy's own upstream connections, which go to the same ports, back into it");
        }
        else if (cgroupText is not null && uidText is not null)
        {
            error(Intercept, $"has both {cgroupKey.Name} and {uidKey.Name}; give one (two routes intercept both)");
        }
        else if (cgroupText is not null)
        {
            string cgroupError = "cannot be checked here";
            if (interception is not null && (selector = interception.FindCgroup(cgroupText, out cgroupError)) is null)
            {
                error(cgroupKey.Path, cgroupError);
            }
        }
        else if (!int.TryParse(uidText, NumberStyles.None, CultureInfo.InvariantCulture, out int uid))
        {
            error(uidKey.Path, $"'{uidText}' is not a user id; expected a whole number such as {uidKey.Example}");
        }
        else if (uid == interception?.OwnUid)
        {
            error(uidKey.Path, $"{uid} is the proxy's own uid, so its upstream connections would be redirected back into it; run the clients as another user, or select them by {cgroupKey.Name}");
        }
        else
        {
            selector = new InterceptSelector.Uid(uid);
        }

        if (protocol == RouteProtocol.Http)
        {
            error(Intercept, $"applies to Tcp and Kafka routes; an Http route forwards every request to its {nameof(RouteConfig.Upstream)}");
        }

        // Broker listeners are not made for an intercepting route: brokers keep their addresses.
        foreach (var field in new[] { nameof(RouteConfig.BrokerPorts), nameof(RouteConfig.AdvertisedHost), nameof(RouteConfig.AllowedBrokers) }.Select(Field))
        {
            if (protocol == RouteProtocol.Kafka && field.Get(route) is not null)
            {
                error(field.Path, "does not apply to an intercepting route: brokers keep the addresses they advertise, and their ports join the intercepted ones");
            }
        }

        if (listen is not null)
        {
            CheckInterceptListen(listen, sources, error);
        }

        if (interception is null)
        {
            error(Intercept, "interception is not available here");
        }
        else if (interception.Missing() is { Count: > 0 } missing)
        {
            error(Intercept, $"the rules cannot be installed: this process lacks {string.Join("; ", missing)}. {interception.HowToGrant}");
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
        const string Where = $"redirected connections arrive at 127.0.0.1 and [::1] (a wildcard 0.0.0.0 or [::] receives them too), e.g. \"{nameof(RouteConfig.Listen)}\": \"127.0.0.1:0,[::1]:0\"";
        var families = new HashSet<AddressFamily>();
        foreach (var endpoint in listen.Endpoints)
        {
            var address = endpoint.Address;
            if (!address.Equals(IPAddress.Loopback) && !address.Equals(IPAddress.IPv6Loopback) && !IsAny(address))
            {
                error(nameof(RouteConfig.Listen), $"{endpoint}: an intercepting route listens where {Where}");
            }
            else if (!families.Add(endpoint.AddressFamily))
            {
                error(nameof(RouteConfig.Listen), $"{endpoint}: an intercepting route has one listener per address family; {Where}");
            }
            else if (sources is not null && endpoint.AddressFamily != sources.Family)
            {
                error(nameof(RouteConfig.Listen), $"{endpoint} would receive {FamilyName(endpoint.AddressFamily)} connections, which cannot leave from the {FamilyName(sources.Family)} Source {sources}");
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
        const string Assign = nameof(RouteConfig.Assign);
        var assignText = route.Assign ?? Field(Assign).Default!;
        if (!TryParseAssign(assignText, out var policy))
        {
            error(Assign, $"'{assignText}' is not a policy; expected one of {string.Join(", ", AssignNames)}");
        }

        if (policy == AssignPolicy.KafkaClientId && protocol != RouteProtocol.Kafka)
        {
            error(Assign, $"{AssignNames[(int)AssignPolicy.KafkaClientId]} needs \"{nameof(RouteConfig.Protocol)}\": \"{RouteProtocol.Kafka}\"");
        }

        if (policy == AssignPolicy.Process && !ProcessLookup.IsSupported)
        {
            error(Assign, $"{AssignNames[(int)AssignPolicy.Process]} needs Linux (/proc); use {AssignNames[(int)AssignPolicy.ClientAddress]} elsewhere");
        }

        var exhaustedField = Field(nameof(RouteConfig.WhenExhausted));
        var exhaustedText = route.WhenExhausted ?? exhaustedField.Default!;
        if (!Enum.TryParse(exhaustedText, ignoreCase: true, out ExhaustedPolicy whenExhausted))
        {
            error(exhaustedField.Path, $"'{exhaustedText}' is not a fallback; expected {OneOf(exhaustedField)}");
        }

        var idle = Duration(Field(nameof(RouteConfig.AssignmentIdleTimeout)), route.AssignmentIdleTimeout, error);

        var clientIds = new Dictionary<string, IPAddress>(StringComparer.Ordinal);
        if (route.ClientIds is { Count: > 0 } ids)
        {
            if (policy != AssignPolicy.KafkaClientId)
            {
                error(nameof(RouteConfig.ClientIds), $"applies only with \"{Assign}\": \"{AssignNames[(int)AssignPolicy.KafkaClientId]}\"");
            }

            foreach (var (id, addressText) in ids)
            {
                if (addressText is null || !AddressSet.TryParseAddress(addressText, out var address))
                {
                    error($"{nameof(RouteConfig.ClientIds)}:{id}", $"'{addressText}' is not an IP address");
                }
                else if (sources is not null && !sources.Contains(address))
                {
                    error($"{nameof(RouteConfig.ClientIds)}:{id}", $"{address} is not in the route's {nameof(RouteConfig.Source)} pool {sources}");
                }
                else if (clientIds.ContainsValue(address))
                {
                    error($"{nameof(RouteConfig.ClientIds)}:{id}", $"{address} is already pinned to client '{clientIds.First(kv => kv.Value.Equals(address)).Key}'");
                }
                else
                {
                    clientIds[id] = address;
                }
            }
        }

        return new AssignmentSettings { Policy = policy, ClientIds = clientIds, WhenExhausted = whenExhausted, IdleTimeout = idle ?? default };
    }

    private static HttpRouteSettings? ValidateHttp(RouteConfig route, RouteProtocol protocol, Action<string, string> error)
    {
        if (protocol != RouteProtocol.Http)
        {
            RefuseFieldsOf(RouteProtocol.Http, route, error);
            return null;
        }

        var xForwardedField = Field(nameof(RouteConfig.XForwarded));
        var xForwardedText = route.XForwarded ?? xForwardedField.Default!;
        if (!bool.TryParse(xForwardedText, out bool xForwarded))
        {
            error(xForwardedField.Path, $"'{xForwardedText}' is neither true nor false");
        }

        var requestTimeout = Duration(Field(nameof(RouteConfig.RequestTimeout)), route.RequestTimeout, error);
        return new HttpRouteSettings { XForwarded = xForwarded, RequestTimeout = requestTimeout ?? default };
    }

    private static KafkaRouteSettings? ValidateKafka(RouteConfig route, RouteProtocol protocol, EndpointSpec? listen, Action<string, string> error)
    {
        if (protocol != RouteProtocol.Kafka)
        {
            RefuseFieldsOf(RouteProtocol.Kafka, route, error);
            return null;
        }

        var brokerPortsField = Field(nameof(RouteConfig.BrokerPorts));
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
                    error(brokerPortsField.Path, $"{first}-{last} overlaps the route's own {nameof(RouteConfig.Listen)} port");
                }
            }
            else
            {
                error(brokerPortsField.Path, $"'{portsText}' is not a port range such as {brokerPortsField.Example}");
            }
        }

        if (route.AdvertisedHost is { } host && Uri.CheckHostName(host.Trim('[', ']')) == UriHostNameType.Unknown)
        {
            error(nameof(RouteConfig.AdvertisedHost), $"'{host}' is neither a host name nor an IP address");
        }

        var maxFrameField = Field(nameof(RouteConfig.MaxFrameSize));
        var sizeText = route.MaxFrameSize ?? maxFrameField.Default!;
        if (!int.TryParse(sizeText, CultureInfo.InvariantCulture, out int maxFrameSize) || maxFrameSize < MinFrameSize)
        {
            error(maxFrameField.Path, $"'{sizeText}' is not a size in bytes of at least {MinFrameSize} (default {maxFrameField.Default})");
        }

        var frameTimeout = Duration(Field(nameof(RouteConfig.FrameTimeout)), route.FrameTimeout, error);

        var decodeField = Field(nameof(RouteConfig.DecodeBodies));
        var decodeText = route.DecodeBodies ?? decodeField.Default!;
        bool decodeAlways = string.Equals(decodeText, "always", StringComparison.OrdinalIgnoreCase);
        if (!decodeAlways && !string.Equals(decodeText, "watched", StringComparison.OrdinalIgnoreCase))
        {
            error(decodeField.Path, $"'{decodeText}' is neither watched nor always");
        }

        BrokerAllowlist? allowedBrokers = null;
        if (route.AllowedBrokers is { } allowedText && !BrokerAllowlist.TryParse(allowedText, out allowedBrokers, out var allowError))
        {
            error(nameof(RouteConfig.AllowedBrokers), allowError);
        }

        return new KafkaRouteSettings
        {
            BrokerPorts = brokerPorts, AdvertisedHost = route.AdvertisedHost, MaxFrameSize = maxFrameSize, FrameTimeout = frameTimeout ?? default, AllowedBrokers = allowedBrokers,
            DecodeBodiesAlways = decodeAlways,
        };
    }

    /// <summary>Checks that the sources can reach the upstream; returns what a host name resolved to (null: a literal, or unresolved).</summary>
    private static async Task<IPAddress[]?> CheckFamilyAsync(string route, AddressSet sources, UpstreamSpec upstream, List<ConfigError> errors, List<string> warnings, CancellationToken cancellationToken)
    {
        if (upstream.LiteralFamily is { } literal)
        {
            if (literal != sources.Family)
            {
                errors.Add(new ConfigError(route, nameof(RouteConfig.Source), $"{sources} is {FamilyName(sources.Family)} but {nameof(RouteConfig.Upstream)} {upstream} is {FamilyName(literal)}; a socket bound to one family cannot reach the other"));
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
            warnings.Add($"route '{route}': {nameof(RouteConfig.Upstream)}: cannot resolve '{upstream.Host}' now ({e.Message}); it is resolved again at each connection");
            return null;
        }

        if (!addresses.Any(a => (a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a).AddressFamily == sources.Family))
        {
            errors.Add(new ConfigError(route, nameof(RouteConfig.Source), $"{sources} is {FamilyName(sources.Family)} but {nameof(RouteConfig.Upstream)} '{upstream.Host}' resolves only to {string.Join(", ", addresses.Select(a => a.ToString()))}; a socket bound to one family cannot reach the other"));
        }

        return addresses;
    }

    /// <summary>The smallest <c>MaxFrameSize</c>: a request header and a little more.</summary>
    private const int MinFrameSize = 1024;

    /// <summary>The route field named <paramref name="name"/> (a <c>nameof</c>).</summary>
    private static ConfigField Field(string name) => RouteConfig.Fields[name];

    /// <summary>The values a field takes, as a message lists them: "Tcp, Kafka or Http".</summary>
    private static string OneOf(ConfigField field) =>
        field.Values.Count < 2 ? string.Join("", field.Values) : $"{string.Join(", ", field.Values.SkipLast(1))} or {field.Values[^1]}";

    /// <summary>
    /// A duration field: the value written, else the field's default, read the same way; null when
    /// neither is there (the field is off) or the value is wrong (reported).
    /// </summary>
    private static TimeSpan? Duration(ConfigField field, string? written, Action<string, string> error, bool positive = true)
    {
        if ((written ?? field.Default) is not { } text)
        {
            return null;
        }

        if (TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var value) && (positive ? value > TimeSpan.Zero : value >= TimeSpan.Zero))
        {
            return value;
        }

        error(field.Path, $"'{text}' is not {(positive ? "a positive duration" : "a duration")} such as {field.Example}");
        return null;
    }

    /// <summary>A limit: the whole number written, else the field's default; null when neither is there (no limit) or the value is wrong (reported).</summary>
    private static int? PositiveCount(ConfigField field, string? written, Action<string, string> error)
    {
        if ((written ?? field.Default) is not { } text)
        {
            return null;
        }

        if (int.TryParse(text, CultureInfo.InvariantCulture, out int value) && value > 0)
        {
            return value;
        }

        error(field.Path, $"'{text}' is not a positive whole number");
        return null;
    }

    /// <summary>Fields set on a route of another protocol than the one they belong to, from the field table.</summary>
    private static void RefuseFieldsOf(RouteProtocol protocol, RouteConfig route, Action<string, string> error)
    {
        foreach (var field in RouteConfig.Fields.All.Where(f => f.OnlyFor == protocol && f.Get(route) is not null))
        {
            error(field.Path, $"applies to {protocol} routes only; set \"{nameof(RouteConfig.Protocol)}\": \"{protocol}\" or remove it");
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
                return $"unknown section; {proxyKey} goes inside the {ProxyConfig.SectionName} section ({ProxyConfig.Fields[proxyKey].Path})";
            }

            return null;
        }

        if (KeySuggestions.Closest(key, unknown.Known) is { } near)
        {
            return $"unknown key; did you mean {near}?";
        }

        if (RouteConfig.Fields.Find(key) is not null)
        {
            return $"unknown key; route fields such as {key} go inside a route, {ProxyConfig.Fields[nameof(ProxyConfig.Routes)].Path}:NAME:{key}";
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
                    errors.Add(new ConfigError(route.Name, nameof(RouteConfig.Upstream), $"{what} is {hit.What} of this proxy: {hit.Why}"));
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
                errors.Add(new ConfigError(route.Name, InterceptConfig.Fields[nameof(InterceptConfig.Ports)].Path, $"route '{earlier.Name}' already intercepts {route.Intercept.Selector}'s connections to {earlier.Intercept!.Ports}, which overlaps {ports}"));
            }

            if (routes.SelectMany(r => r.Listen.Endpoints.Select(e => (Route: r, e.Port))).FirstOrDefault(l => l.Port != 0 && ports.Contains(l.Port)) is { Route: { } owner } listener)
            {
                errors.Add(new ConfigError(route.Name, InterceptConfig.Fields[nameof(InterceptConfig.Ports)].Path, $"{ports} includes {listener.Port}, a listen port of route '{owner.Name}' of this proxy: connections to it would be redirected away from it"));
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
                    errors.Add(new ConfigError(route.Name, nameof(RouteConfig.Listen), clash.Value == route.Name
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
