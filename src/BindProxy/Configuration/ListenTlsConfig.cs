namespace BindProxy.Configuration;

/// <summary>
/// A route's <c>ListenTls</c> section as the user wrote it: TLS on the route's listeners, for
/// clients that insist on it (a Kafka route's broker listeners included). Raw strings, validated
/// by <see cref="ConfigValidator"/> into <see cref="ListenTlsSettings"/>.
/// </summary>
internal sealed record ListenTlsConfig
{
    /// <summary>The keys of a route's <c>ListenTls</c> section.</summary>
    public static FieldTable Fields { get; } = FieldTable.Of<ListenTlsConfig>(nameof(RouteConfig.ListenTls));

    [ConfigField("`true`: clients connect to the route's listeners with TLS. `false` keeps the section but listens in plaintext.",
        Forms = "`true`, `false`", Default = "true")]
    public string? Enabled { get; init; }

    [ConfigField("The certificate the proxy shows its clients: PEM (its key in `KeyFile` or after it in the same file; intermediates after it are sent too) or PKCS#12 (`.p12`, `.pfx`). `bindproxy cert` makes one for the configured listen addresses.",
        Forms = "`/etc/bindproxy/proxy.pem`, `/etc/bindproxy/proxy.p12`")]
    public string? CertificateFile { get; init; }

    [ConfigField("The private key of a PEM `CertificateFile` (PKCS#8, PKCS#1 or SEC1 PEM; encrypted with `Password`).",
        Forms = "`/etc/bindproxy/proxy-key.pem`", Unset = "the key in `CertificateFile` itself")]
    public string? KeyFile { get; init; }

    [ConfigField("The password of an encrypted PEM key or a PKCS#12 file; never shown.",
        Forms = "`changeit`", Unset = "none", Secret = true)]
    public string? Password { get; init; }

    [ConfigField("Require a client certificate that chains to one of these CAs (a PEM file); a client without one is refused.",
        Forms = "`/etc/bindproxy/clients-ca.pem`", Unset = "no client certificate asked for")]
    public string? ClientCaFile { get; init; }

    [ConfigField("The oldest TLS version a client may use.",
        Forms = "`1.2`, `1.3`", Default = "1.2")]
    public string? MinVersion { get; init; }

    [ConfigField("How long a client has from its connect to the end of its handshake; one that has not finished by then (or sent nothing) is closed and counted.",
        Forms = "`00:00:10`", Default = "00:00:10")]
    public string? HandshakeTimeout { get; init; }

    /// <summary>The section <paramref name="written"/>, and the keys in it that no field reads.</summary>
    public static (ListenTlsConfig Config, IReadOnlyList<string> UnknownKeys) Read(IReadOnlyDictionary<string, string?> written) => Fields.Read(written, new ListenTlsConfig());
}
