namespace BindProxy.Configuration;

/// <summary>
/// A route's <c>Tls</c> section as the user wrote it: TLS on the route's upstream connections (a
/// Kafka route's broker connections included). Raw strings, validated by
/// <see cref="ConfigValidator"/> into <see cref="TlsSettings"/>; the route keeps the section as
/// written (<see cref="RouteConfig.Tls"/>), for the reload diff.
/// </summary>
internal sealed record TlsConfig
{
    /// <summary>The keys of a route's <c>Tls</c> section.</summary>
    public static FieldTable Fields { get; } = FieldTable.Of<TlsConfig>(nameof(RouteConfig.Tls));

    [ConfigField("`true`: the route's upstream connections are TLS. `false` keeps the section but connects in plaintext.",
        Forms = "`true`, `false`", Default = "true")]
    public string? Enabled { get; init; }

    [ConfigField("The CAs whose certificates the upstream's may chain to, instead of the system's trust store: a PEM file of one or more certificates (a DER file of one, or a PKCS#12 file with `Password`, also do).",
        Forms = "`/etc/bindproxy/cluster-ca.pem`", Unset = "the system's trust store")]
    public string? CaFile { get; init; }

    [ConfigField("A client certificate for mutual TLS: PEM (its key in `KeyFile` or after it in the same file; intermediates after it are sent too) or PKCS#12 (`.p12`, `.pfx`, with its key).",
        Forms = "`/etc/bindproxy/client.pem`, `/etc/bindproxy/client.p12`", Unset = "none: no client certificate")]
    public string? CertificateFile { get; init; }

    [ConfigField("The private key of a PEM `CertificateFile` (PKCS#8, PKCS#1 or SEC1 PEM; encrypted with `Password`).",
        Forms = "`/etc/bindproxy/client-key.pem`", Unset = "the key in `CertificateFile` itself")]
    public string? KeyFile { get; init; }

    [ConfigField("The password of an encrypted PEM key or a PKCS#12 file. Never shown (the reload log shows a digest); an environment variable keeps it out of the file: `BINDPROXY_BindProxy__Routes__NAME__Tls__Password`.",
        Forms = "`changeit`", Unset = "none", Secret = true)]
    public string? Password { get; init; }

    [ConfigField("The name sent as SNI and checked against the upstream's certificate. A Kafka route's broker connections use each broker's advertised host instead (this name when a broker advertises an IP address).",
        Forms = "`kafka.example.com`", Unset = "the host of `Upstream`")]
    public string? ServerName { get; init; }

    [ConfigField("The oldest TLS version the connection may use.",
        Forms = "`1.2`, `1.3`", Default = "1.2")]
    public string? MinVersion { get; init; }

    [ConfigField("`true` accepts any certificate under any name: no verification at all. The proxy warns at startup and the status page shows it; for test clusters only.",
        Forms = "`false`, `true`", Default = "false")]
    public string? Insecure { get; init; }

    [ConfigField("How long the TLS handshake may take once connected; past it the client is closed, as for a connect timeout.",
        Forms = "`00:00:10`", Default = "00:00:10")]
    public string? HandshakeTimeout { get; init; }

    /// <summary>The section <paramref name="written"/>, and the keys in it that no field reads.</summary>
    public static (TlsConfig Config, IReadOnlyList<string> UnknownKeys) Read(IReadOnlyDictionary<string, string?> written) => Fields.Read(written, new TlsConfig());
}
