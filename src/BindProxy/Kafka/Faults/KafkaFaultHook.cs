using System.Globalization;
using BindProxy.Faults;
using BindProxy.Kafka.Protocol;

namespace BindProxy.Kafka.Faults;

/// <summary>
/// The Kafka toxics of one connection's route (<c>kafka_latency</c>, <c>kafka_drop</c>), applied
/// to each response by the API of the request it answers. A toxic's toxicity is the share of
/// responses it hits, and its match is asked at each response, so a client.id named after the
/// connection opened counts. Reads the route's toxic list once per response.
/// </summary>
internal sealed class KafkaFaultHook(RouteFaults faults, ConnectionIdentity who, Action<Toxic>? applied) : IKafkaFaults
{
    public void OnRequest(short apiKey, string? clientId)
    {
        if (clientId is not null && who.ClientId is null)
        {
            who.ClientId = clientId;
        }
    }

    public bool HasKafkaToxics
    {
        get
        {
            foreach (var toxic in faults.Snapshot)
            {
                if (toxic.Kind.IsKafka)
                {
                    return true;
                }
            }

            return false;
        }
    }

    public async ValueTask<bool> OnResponseAsync(short apiKey, CancellationToken cancellationToken)
    {
        var toxics = faults.Snapshot;
        if (toxics.Length == 0)
        {
            return true;
        }

        long delayMs = 0;
        foreach (var toxic in toxics)
        {
            if (!toxic.Kind.IsKafka || !Hits(toxic, apiKey))
            {
                continue;
            }

            applied?.Invoke(toxic);
            if (toxic.Kind == ToxicKind.KafkaDrop)
            {
                return false;
            }

            long jitter = toxic["jitter"];
            delayMs += toxic["latency"] + (jitter > 0 ? Random.Shared.NextInt64(-jitter, jitter + 1) : 0);
        }

        if (delayMs > 0)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(delayMs), cancellationToken).ConfigureAwait(false);
        }

        return true;
    }

    private bool Hits(Toxic toxic, short apiKey) =>
        (toxic.Text("api") is not { } api || IsApi(api, apiKey)) &&
        (toxic.Match is not { } match || match.Matches(who)) &&
        (toxic.Toxicity >= 1 || Random.Shared.NextDouble() < toxic.Toxicity);

    /// <summary>An API given by name (any case) or key.</summary>
    public static bool IsApi(string api, short apiKey) =>
        short.TryParse(api, NumberStyles.Integer, CultureInfo.InvariantCulture, out short key) ? key == apiKey : string.Equals(api, KafkaApis.NameOf(apiKey), StringComparison.OrdinalIgnoreCase);

    /// <summary>Null when <paramref name="api"/> names an API the proxy knows, else why not.</summary>
    public static string? CheckApi(string api) =>
        KafkaApis.All.Any(a => IsApi(api, a.Key)) ? null : $"'{api}' is not a Kafka API name or key the proxy knows (such as Fetch, Produce, Metadata or 1)";
}
