namespace BindProxy.Kafka.Protocol;

/// <summary>
/// One Kafka API as the generated model knows it: name, the versions it has definitions for, and
/// the first version with the flexible encoding (compact strings and arrays, tagged fields;
/// request header v2, response header v1).
/// </summary>
/// <param name="LatestVersionUnstable">Kafka marks the newest version as still changing; brokers offer it only when told to.</param>
internal readonly record struct KafkaApi(short Key, string Name, short MinVersion, short MaxVersion, short FirstFlexible, bool LatestVersionUnstable)
{
    /// <summary>A version that never comes: SaslHandshake and OffsetDelete never became flexible.</summary>
    public const short Never = short.MaxValue;

    /// <summary>False for a key the model has no definitions for.</summary>
    public bool IsKnown => MaxVersion >= MinVersion;

    public bool IsFlexible(short version) => version >= FirstFlexible;

    /// <summary>True when the model can read and write this version of the API's request and response.</summary>
    public bool Knows(short version) => IsKnown && version >= MinVersion && version <= MaxVersion;

    /// <summary>Request header version: 0 (no client_id), 1, or 2 (flexible: tagged fields after client_id).</summary>
    public short RequestHeaderVersion(short version)
    {
        // ControlledShutdown v0 predates client_id; it is the only user of header v0.
        if (Key == KafkaApiKeys.ControlledShutdown && version == 0)
        {
            return 0;
        }

        return IsFlexible(version) ? (short)2 : (short)1;
    }

    /// <summary>Response header version: 0 (correlation id) or 1 (plus tagged fields).</summary>
    public short ResponseHeaderVersion(short version)
    {
        // ApiVersions responses keep header v0 at every version, so a client that does not yet
        // know the broker's versions can always read the correlation id.
        if (Key == KafkaApiKeys.ApiVersions)
        {
            return 0;
        }

        return IsFlexible(version) ? (short)1 : (short)0;
    }
}

/// <summary>
/// The one table of Kafka APIs (generated from the message definitions, see KafkaApis.g.cs):
/// metrics, log lines, header parsing, the rewriter and the ApiVersions cap all read it.
/// </summary>
internal static partial class KafkaApis
{
    /// <summary>The label value for keys outside the table, so a bad client cannot grow the metric series.</summary>
    public const string UnknownName = "other";

    /// <summary>Every key the model knows, in key order (the keys are contiguous from 0).</summary>
    public static IReadOnlyList<KafkaApi> All => Table;

    /// <summary>
    /// The API of <paramref name="key"/>. Keys beyond the table are named <see cref="UnknownName"/>,
    /// not known (<see cref="KafkaApi.IsKnown"/>), and assumed flexible from version 0: every API
    /// added since Kafka 2.4 (KIP-482) has been.
    /// </summary>
    public static KafkaApi Of(short key) =>
        key >= 0 && key < Table.Length ? Table[key] : new KafkaApi(key, UnknownName, 0, -1, key < 0 ? KafkaApi.Never : (short)0, false);

    public static string NameOf(short key) => Of(key).Name;
}
