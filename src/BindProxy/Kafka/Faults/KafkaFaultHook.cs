using System.Buffers;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using BindProxy.Faults;
using BindProxy.Kafka.Protocol;

namespace BindProxy.Kafka.Faults;

/// <summary>
/// The Kafka toxics of one connection's route (<c>kafka_latency</c>, <c>kafka_drop</c>,
/// <c>kafka_error</c>, <c>kafka_throttle</c>), applied by the API of each request and, with a
/// <c>topic</c>, by the topics it names. A toxic's toxicity is the share of requests or responses
/// it hits, and its match is asked each time, so a client.id named after the connection opened
/// counts. <c>kafka_error</c> decides at the request (its <c>rate</c> or <c>count</c>), the others
/// at the response. Reads the route's toxic list once per request and response.
/// </summary>
internal sealed class KafkaFaultHook(RouteFaults faults, ConnectionIdentity who, Action<Toxic>? applied, Func<Guid, string?>? topicName = null) : IKafkaFaults
{
    /// <summary>The requests left of each <c>kafka_error</c>'s <c>count</c>, shared by every connection of its route; an update starts again.</summary>
    private static readonly ConditionalWeakTable<Toxic, StrongBox<long>> s_counts = [];

    private static readonly ConditionalWeakTable<string, Regex> s_regexes = [];

    private readonly Dictionary<int, Noted> _noted = [];
    private readonly Lock _lock = new();

    /// <summary>What the response to a request needs: the topics it named (when a toxic asks), and the error a forwarding kafka_error put on it.</summary>
    private sealed record Noted(List<TopicRef>? Topics, Toxic? Error, KafkaError Code);

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

    public RequestVerdict OnRequest(in ReadOnlySequence<byte> request, in KafkaRequestHeader header, bool whole, bool expectsResponse)
    {
        if (header.ClientId is not null && who.ClientId is null)
        {
            who.ClientId = header.ClientId;
        }

        var toxics = faults.Snapshot;
        if (toxics.Length == 0)
        {
            return RequestVerdict.Forwarded;
        }

        bool wantTopics = false, anyError = false;
        foreach (var toxic in toxics)
        {
            if (toxic.Kind.IsKafka && Aimed(toxic, header.ApiKey))
            {
                wantTopics |= toxic.Text("topic") is not null || (toxic.Kind == ToxicKind.KafkaError && toxic.Text("forward") != "true");
                anyError |= toxic.Kind == ToxicKind.KafkaError;
            }
        }

        if (!wantTopics && !anyError)
        {
            return RequestVerdict.Forwarded;
        }

        var body = whole && wantTopics ? KafkaFaultMessages.ReadRequest(request, header) : null;
        var topics = body is null ? null : KafkaFaultMessages.Topics(body);
        foreach (var toxic in toxics)
        {
            if (toxic.Kind != ToxicKind.KafkaError || !Aimed(toxic, header.ApiKey) || !TopicHit(toxic, topics) || !ErrorOf(toxic, out var error) || !Decide(toxic))
            {
                continue;
            }

            applied?.Invoke(toxic);
            string injected = $"{error.Name} from kafka_error toxic {toxic.Name}";
            if (toxic.Text("forward") != "true" && body is not null)
            {
                if (!expectsResponse)
                {
                    return new RequestVerdict(false, null, injected + " (kept from the broker; acks=0, so no answer)");
                }

                if (KafkaFaultMessages.Answer(body, header.ApiKey, header.ApiVersion, header.CorrelationId, error) is { } answer)
                {
                    return new RequestVerdict(false, answer, injected + " (answered by the proxy; the broker never saw the request)");
                }
            }

            // Forwarded (forward=true, or a request too large to hold back): the error goes in its response.
            Note(header, expectsResponse, new Noted(topics, toxic, error));
            return RequestVerdict.Forwarded;
        }

        if (wantTopics)
        {
            Note(header, expectsResponse, new Noted(topics, null, default));
        }

        return RequestVerdict.Forwarded;
    }

    private void Note(in KafkaRequestHeader header, bool expectsResponse, Noted noted)
    {
        if (expectsResponse)
        {
            lock (_lock)
            {
                _noted[header.CorrelationId] = noted;
            }
        }
    }

    public async ValueTask<ResponseVerdict> OnResponseAsync(int correlationId, InFlightRequest request, ReadOnlySequence<byte> response, CancellationToken cancellationToken)
    {
        Noted? noted = null;
        var toxics = faults.Snapshot;
        lock (_lock)
        {
            if (_noted.Count > 0)
            {
                _noted.Remove(correlationId, out noted);
            }
        }

        if (toxics.Length == 0 && noted is null)
        {
            return ResponseVerdict.Passed;
        }

        long delayMs = 0;
        int? throttleMs = null;
        Toxic? throttled = null;
        foreach (var toxic in toxics)
        {
            if (!toxic.Kind.IsKafka || toxic.Kind == ToxicKind.KafkaError || !Aimed(toxic, request.ApiKey) || !TopicHit(toxic, noted?.Topics) || !Chance(toxic.Toxicity))
            {
                continue;
            }

            if (toxic.Kind == ToxicKind.KafkaDrop)
            {
                applied?.Invoke(toxic);
                return new ResponseVerdict(false, null, $"response dropped by kafka_drop toxic {toxic.Name}");
            }

            if (toxic.Kind == ToxicKind.KafkaThrottle)
            {
                throttleMs = (int)Math.Min(toxic["throttle_ms"], int.MaxValue);
                throttled = toxic;
                continue;
            }

            applied?.Invoke(toxic);
            long jitter = toxic["jitter"];
            delayMs += toxic["latency"] + (jitter > 0 ? Random.Shared.NextInt64(-jitter, jitter + 1) : 0);
        }

        if (delayMs > 0)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(delayMs), cancellationToken).ConfigureAwait(false);
        }

        if (noted?.Error is null && throttleMs is null)
        {
            return ResponseVerdict.Passed;
        }

        var regex = noted?.Error?.Text("topic") is { } pattern ? RegexOf(pattern) : null;
        var edited = KafkaFaultMessages.Edit(response, request.ApiKey, request.ApiVersion, noted?.Error is null ? null : noted.Code,
            topic => regex is null || TopicMatches(regex, topic), everywhere: regex is null, throttleMs);
        if (edited is null)
        {
            return ResponseVerdict.Passed;
        }

        if (throttled is not null)
        {
            applied?.Invoke(throttled);
        }

        var what = string.Join("; ", new[]
        {
            noted?.Error is { } error ? $"{noted.Code.Name} set by kafka_error toxic {error.Name}" : null,
            throttled is not null ? $"throttle_time_ms {throttleMs} set by kafka_throttle toxic {throttled.Name}" : null,
        }.Where(s => s is not null));
        return new ResponseVerdict(true, edited, what);
    }

    // ---- deciding ------------------------------------------------------------------------------

    private bool Aimed(Toxic toxic, short apiKey) =>
        (toxic.Text("api") is not { } api || IsApi(api, apiKey)) &&
        (toxic.Match is not { } match || match.Matches(who));

    /// <summary>True when the toxic names no topic, or the request named one it matches.</summary>
    private bool TopicHit(Toxic toxic, List<TopicRef>? topics) =>
        toxic.Text("topic") is not { } pattern || (topics is not null && RegexOf(pattern) is { } regex && topics.Exists(t => TopicMatches(regex, t)));

    /// <summary>A topic named by id only (Fetch v13+) matches by the name the route's Metadata responses gave that id.</summary>
    private bool TopicMatches(Regex regex, TopicRef topic)
    {
        if ((topic.Name ?? (topic.Id != Guid.Empty ? topicName?.Invoke(topic.Id) : null)) is not { } name)
        {
            return false;
        }

        try
        {
            return regex.IsMatch(name);
        }
        catch (RegexMatchTimeoutException)
        {
            return false;
        }
    }

    private static bool Chance(double share) => share >= 1 || Random.Shared.NextDouble() < share;

    /// <summary>A kafka_error's toxicity, then its rate, or one of its count.</summary>
    private static bool Decide(Toxic toxic)
    {
        if (!Chance(toxic.Toxicity))
        {
            return false;
        }

        if (toxic["count"] is > 0 and var count)
        {
            var left = s_counts.GetValue(toxic, _ => new StrongBox<long>(count));
            return Interlocked.Decrement(ref left.Value) >= 0;
        }

        return toxic.Text("rate") is not { } rate || (double.TryParse(rate, NumberStyles.Float, CultureInfo.InvariantCulture, out double share) && Chance(share));
    }

    private static bool ErrorOf(Toxic toxic, out KafkaError error)
    {
        error = default;
        return toxic.Text("error") is { } text && TryError(text, out error);
    }

    private static bool TryError(string text, out KafkaError error)
    {
        if (short.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out short code))
        {
            error = KafkaErrors.TryGet(code, out var known) ? known : new KafkaError(code, KafkaErrors.NameOf(code), false, "");
            return true;
        }

        return KafkaErrors.TryGet(text, out error);
    }

    private static Regex? RegexOf(string pattern)
    {
        if (s_regexes.TryGetValue(pattern, out var regex))
        {
            return regex;
        }

        try
        {
            regex = new Regex(pattern, RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(50));
        }
        catch (ArgumentException)
        {
            return null; // checked when the toxic was added; one from elsewhere matches nothing
        }

        return s_regexes.GetValue(pattern, _ => regex);
    }

    // ---- checking attributes -------------------------------------------------------------------

    /// <summary>An API given by name (any case) or key.</summary>
    public static bool IsApi(string api, short apiKey) =>
        short.TryParse(api, NumberStyles.Integer, CultureInfo.InvariantCulture, out short key) ? key == apiKey : string.Equals(api, KafkaApis.NameOf(apiKey), StringComparison.OrdinalIgnoreCase);

    /// <summary>Null when <paramref name="api"/> names an API the proxy knows, else why not.</summary>
    public static string? CheckApi(string api) =>
        KafkaApis.All.Any(a => IsApi(api, a.Key)) ? null : $"'{api}' is not a Kafka API name or key the proxy knows (such as Fetch, Produce, Metadata or 1)";

    /// <summary>Null when a Kafka toxic's text attribute is good, else why not.</summary>
    public static string? CheckText(string attribute, string value) => attribute switch
    {
        "api" => CheckApi(value),
        "error" => TryError(value, out _) ? null : $"'{value}' is not a Kafka error name or code (such as NOT_LEADER_OR_FOLLOWER or 6)",
        "topic" => CheckRegex(value),
        "rate" => double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double rate) && rate is >= 0 and <= 1
            ? null
            : $"rate must be a number from 0 to 1; got {value}",
        "forward" => value is "true" or "false" ? null : $"forward must be true or false; got {value}",
        _ => null,
    };

    private static string? CheckRegex(string pattern)
    {
        try
        {
            _ = new Regex(pattern, RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(50));
            return null;
        }
        catch (ArgumentException e)
        {
            return $"'{pattern}' is not a regular expression: {e.Message}";
        }
    }
}
