using System.Globalization;
using System.Text;

namespace BindProxy.Kafka.Conversation;

/// <summary>The one-line forms of an exchange, for the debug log, the API's <c>summary</c> and <c>bindproxy kafka tail</c>.</summary>
internal static class ExchangeText
{
    private const int MaxTopicsShown = 6;
    private const int MaxPartitionsShown = 8;
    private const int MaxErrorsShown = 4;

    /// <summary><c>Produce v9 #12, 1130 bytes: orders[0,1] 10 records</c></summary>
    public static string Request(KafkaExchange exchange)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{exchange.ApiName} v{exchange.ApiVersion} #{exchange.CorrelationId}, {exchange.RequestBytes} bytes");
        if (exchange.ClientId is { } clientId)
        {
            text.Append(CultureInfo.InvariantCulture, $" (client.id {clientId})");
        }

        if (exchange.State == ExchangeState.NoResponse)
        {
            text.Append(", no response expected (acks=0)");
        }

        AppendBody(text, exchange.Request, exchange.RequestNote);
        return text.ToString();
    }

    /// <summary><c>Produce v9 #12, 56 bytes in 0.41 ms: orders[0] NOT_LEADER_OR_FOLLOWER orders[0]</c></summary>
    public static string Response(KafkaExchange exchange)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{exchange.ApiName} v{exchange.ApiVersion} #{exchange.CorrelationId}");
        switch (exchange.State)
        {
            case ExchangeState.Answered:
                text.Append(CultureInfo.InvariantCulture, $", {exchange.ResponseBytes} bytes in {exchange.Latency!.Value.TotalMilliseconds:0.###} ms");
                break;
            case ExchangeState.Unanswered:
                text.Append(", unanswered: the connection ended first");
                break;
            case ExchangeState.NoResponse:
                text.Append(", no response expected (acks=0)");
                break;
            default:
                text.Append(", in flight");
                break;
        }

        AppendBody(text, exchange.Response, exchange.ResponseNote);
        return text.ToString();
    }

    /// <summary>
    /// Both bodies in a few words: the longer where one says what the other does and more (a
    /// Produce request's records, a Fetch response's), else the request's, then the response's.
    /// Null when neither was decoded; the reason when decoding failed.
    /// </summary>
    public static string? Combined(KafkaExchange exchange)
    {
        var request = Summary(exchange.Request);
        var response = Summary(exchange.Response);
        if (string.IsNullOrEmpty(request))
        {
            return string.IsNullOrEmpty(response) ? exchange.ResponseNote ?? exchange.RequestNote : response;
        }

        if (string.IsNullOrEmpty(response) || request.StartsWith(response, StringComparison.Ordinal))
        {
            return exchange.ResponseNote is { } note ? $"{request} (response undecoded: {note})" : request;
        }

        return response.StartsWith(request, StringComparison.Ordinal) ? response : $"{request} → {response}";
    }

    /// <summary>What a body says in a few words: topics and partitions, records, throttle time, errors other than NONE.</summary>
    public static string? Summary(ExchangeBody? body)
    {
        if (body is null)
        {
            return null;
        }

        var text = new StringBuilder();
        int shown = 0;
        foreach (var topic in body.Topics)
        {
            if (shown++ == MaxTopicsShown)
            {
                text.Append(CultureInfo.InvariantCulture, $" +{body.Topics.Count - MaxTopicsShown} topics");
                break;
            }

            Space(text).Append(topic.Label);
            if (topic.Partitions.Count > 0)
            {
                text.Append('[');
                text.AppendJoin(',', topic.Partitions.Take(MaxPartitionsShown).Select(p => p.Index.ToString(CultureInfo.InvariantCulture)));
                if (topic.Partitions.Count > MaxPartitionsShown)
                {
                    text.Append(CultureInfo.InvariantCulture, $",+{topic.Partitions.Count - MaxPartitionsShown}");
                }

                text.Append(']');
            }
        }

        long records = body.Records;
        if (records > 0 || body.RecordBytes > 0)
        {
            Space(text).Append(CultureInfo.InvariantCulture, $"{records} records {body.RecordBytes} bytes");
        }

        if (body.ThrottleTimeMs is > 0 and var throttle)
        {
            Space(text).Append(CultureInfo.InvariantCulture, $"throttled {throttle} ms");
        }

        int errors = 0;
        foreach (var error in body.Errors)
        {
            if (error.Code == 0)
            {
                continue;
            }

            if (errors++ == MaxErrorsShown)
            {
                text.Append(" ...");
                break;
            }

            Space(text).Append(error.Name);
            if (error.Topic >= 0 && error.Topic < body.Topics.Count)
            {
                text.Append(' ').Append(body.Topics[error.Topic].Label);
                if (error.Partition >= 0)
                {
                    text.Append(CultureInfo.InvariantCulture, $"[{error.Partition}]");
                }
            }
        }

        return text.ToString();
    }

    private static void AppendBody(StringBuilder text, ExchangeBody? body, string? note)
    {
        if (Summary(body) is { Length: > 0 } summary)
        {
            text.Append(": ").Append(summary);
        }
        else if (note is not null)
        {
            text.Append(" (undecoded: ").Append(note).Append(')');
        }
    }

    private static StringBuilder Space(StringBuilder text) => text.Length > 0 ? text.Append(' ') : text;
}
