namespace BindProxy.Kafka.Protocol;

/// <summary>An error code of the protocol, as Kafka's Errors.java defines it.</summary>
/// <param name="Retriable">Kafka's clients retry it (its exception is a RetriableException).</param>
/// <param name="Message">The text a Java broker gives with it.</param>
internal readonly record struct KafkaError(short Code, string Name, bool Retriable, string Message);

/// <summary>Error codes by number and name (generated from Errors.java, see KafkaErrors.g.cs).</summary>
internal static partial class KafkaErrors
{
    // Built on first use: the table is a static field of the generated part, whose initialisation
    // order against this file's is not defined.
    private static Dictionary<short, KafkaError>? s_byCode;
    private static Dictionary<string, KafkaError>? s_byName;

    private static Dictionary<short, KafkaError> ByCode => s_byCode ??= Table.ToDictionary(e => e.Code);

    private static Dictionary<string, KafkaError> ByName => s_byName ??= Table.ToDictionary(e => e.Name, StringComparer.OrdinalIgnoreCase);

    public static IReadOnlyList<KafkaError> All => Table;

    /// <summary>The error of <paramref name="code"/>; false for a code the model does not know.</summary>
    public static bool TryGet(short code, out KafkaError error) => ByCode.TryGetValue(code, out error);

    /// <summary>The error named <paramref name="name"/> (NOT_LEADER_OR_FOLLOWER; case ignored).</summary>
    public static bool TryGet(string name, out KafkaError error) => ByName.TryGetValue(name, out error);

    /// <summary>The name of <paramref name="code"/>, or "UNKNOWN_ERROR_CODE_n" for one the model does not know.</summary>
    public static string NameOf(short code) => ByCode.TryGetValue(code, out var error) ? error.Name : $"UNKNOWN_ERROR_CODE_{code}";
}
