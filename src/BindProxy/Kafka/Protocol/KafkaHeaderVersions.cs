namespace BindProxy.Kafka.Protocol;

/// <summary>
/// Which request/response header version an (api key, api version) pair uses. Kafka switched
/// each API to "flexible" encodings (compact strings, tagged fields) at a different version;
/// flexible requests use request header v2 and flexible responses response header v1, which
/// adds a tagged-field block the proxy must step over to find the body.
/// </summary>
internal static class KafkaHeaderVersions
{
    private const short Never = short.MaxValue;

    // First flexible version per api key, index = api key (0..87), taken from the
    // "flexibleVersions" of each request schema. SaslHandshake (17) and OffsetDelete (47)
    // never became flexible.
    private static ReadOnlySpan<short> FirstFlexible =>
    [
        9, 12, 6, 9, 4, 2, 6, 3, 8, 6, // 0-9
        3, 6, 4, 4, 4, 5, 3, Never, 3, 5, // 10-19
        4, 2, 2, 4, 3, 3, 3, 1, 3, 2, // 20-29
        2, 2, 4, 2, 2, 2, 2, 2, 2, 2, // 30-39
        2, 2, 2, 2, 1, 0, 0, Never, 1, 1, // 40-49
        0, 0, 0, 1, 1, 0, 0, 0, 0, 0, // 50-59
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // 60-69
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // 70-79
        0, 0, 0, 0, 0, 0, 0, 0, // 80-87
    ];

    /// <summary>True when the request uses header v2 (tagged fields after client_id).</summary>
    /// <remarks>
    /// Keys beyond the table are assumed flexible: every API added since Kafka 2.4 (KIP-482)
    /// has been flexible from version 0.
    /// </remarks>
    public static bool IsFlexible(short apiKey, short apiVersion)
    {
        if (apiKey < 0)
        {
            return false;
        }

        var table = FirstFlexible;
        return apiKey >= table.Length || apiVersion >= table[apiKey];
    }

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
