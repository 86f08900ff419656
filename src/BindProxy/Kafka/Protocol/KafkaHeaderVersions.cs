namespace BindProxy.Kafka.Protocol;

/// <summary>
/// Which request/response header version an (api key, api version) pair uses. Kafka switched
/// each API to "flexible" encodings (compact strings, tagged fields) at a different version;
/// flexible requests use request header v2 and flexible responses response header v1, which
/// adds a tagged-field block the proxy must step over to find the body.
/// </summary>
internal static class KafkaHeaderVersions
{
    /// <summary>True when the request uses header v2 (tagged fields after client_id); see <see cref="KafkaApis.Of"/>.</summary>
    public static bool IsFlexible(short apiKey, short apiVersion) => KafkaApis.Of(apiKey).IsFlexible(apiVersion);

    /// <summary>Request header version: 0 (no client_id), 1, or 2 (flexible).</summary>
    public static int RequestHeaderVersion(short apiKey, short apiVersion)
    {
        // ControlledShutdown v0 predates client_id; it is the only user of header v0.
        if (apiKey == KafkaApiKeys.ControlledShutdown && apiVersion == 0)
        {
            return 0;
        }

        return IsFlexible(apiKey, apiVersion) ? 2 : 1;
    }

    /// <summary>Response header version: 0 (correlation id) or 1 (plus tagged fields).</summary>
    public static int ResponseHeaderVersion(short apiKey, short apiVersion)
    {
        // ApiVersions responses keep header v0 at every version so a client that does not yet
        // know the broker's versions can always read the correlation id.
        if (apiKey == KafkaApiKeys.ApiVersions)
        {
            return 0;
        }

        return IsFlexible(apiKey, apiVersion) ? 1 : 0;
    }
}
