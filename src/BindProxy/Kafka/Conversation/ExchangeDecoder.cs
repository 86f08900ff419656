using System.Buffers;
using BindProxy.Kafka.Protocol;

namespace BindProxy.Kafka.Conversation;

/// <summary>
/// Reads a request or response body with the generated model and summarizes it with
/// <see cref="BodySummarizer"/>: one way for every API and version, no code per API. A body the
/// model cannot read gives no summary and a note that says why; nothing here throws on bad bytes.
/// </summary>
internal static class ExchangeDecoder
{
    /// <summary>The request body of a whole request <paramref name="frame"/> whose header is <paramref name="header"/>.</summary>
    public static ExchangeBody? Request(in ReadOnlySequence<byte> frame, in KafkaRequestHeader header, TopicNames? names, out string? note)
    {
        var api = KafkaApis.Of(header.ApiKey);
        if (!api.Knows(header.ApiVersion))
        {
            note = Unknown(api, header.ApiVersion);
            return null;
        }

        var message = KafkaApis.CreateRequest(header.ApiKey)!;
        var reader = new KafkaReader(frame);
        if (!reader.Skip(header.BodyOffset) || !message.TryRead(ref reader, header.ApiVersion))
        {
            note = Unreadable(api, header.ApiVersion, "request", reader.Error, reader.Position);
            return null;
        }

        note = null;
        return Summarize(message, header.ApiVersion, names);
    }

    /// <summary>The body of a whole response <paramref name="frame"/> that answers (<paramref name="apiKey"/>, <paramref name="version"/>).</summary>
    public static ExchangeBody? Response(in ReadOnlySequence<byte> frame, short apiKey, short version, TopicNames? names, out string? note)
    {
        var api = KafkaApis.Of(apiKey);
        if (!api.Knows(version))
        {
            note = Unknown(api, version);
            return null;
        }

        var reader = new KafkaReader(frame);
        if (!KafkaResponseHeader.TrySkip(ref reader, apiKey, version))
        {
            note = Unreadable(api, version, "response", reader.Error, reader.Position);
            return null;
        }

        // A broker that does not know the ApiVersions version asked for answers UNSUPPORTED_VERSION
        // in the v0 layout, whatever the version.
        var bodyStart = reader.Position;
        var requested = version;
        if (apiKey == KafkaApiKeys.ApiVersions && version > 0 && reader.ReadInt16(out var code) && code == UnsupportedVersion)
        {
            version = 0;
        }

        reader = new KafkaReader(frame);
        reader.Skip(bodyStart);
        var message = KafkaApis.CreateResponse(apiKey)!;
        if (!message.TryRead(ref reader, version))
        {
            if (version != requested)
            {
                // The error code leads every layout, and is all an UNSUPPORTED_VERSION answer says
                // for sure (librdkafka's mock cluster sends neither the v0 layout nor the one asked for).
                note = null;
                return new ExchangeBody([], [new ErrorAt(UnsupportedVersion, -1, -1)], null, 0, 0, 0);
            }

            note = Unreadable(api, version, "response", reader.Error, reader.Position);
            return null;
        }

        note = null;
        return Summarize(message, version, names);
    }

    /// <summary>A body the model has already read (the rewriter reads some whole).</summary>
    public static ExchangeBody Summarize(IKafkaMessage message, short version, TopicNames? names)
    {
        var summarizer = new BodySummarizer();
        message.Accept(summarizer, version);
        return summarizer.ToBody(names);
    }

    private const short UnsupportedVersion = 35;

    private static string Unknown(KafkaApi api, short version) => api.IsKnown
        ? $"{api.Name} v{version} is not in the protocol model (it knows v{api.MinVersion}-{api.MaxVersion})"
        : $"api key {api.Key} is not in the protocol model";

    private static string Unreadable(KafkaApi api, short version, string what, MalformedReason reason, long position) =>
        $"the {api.Name} v{version} {what} body cannot be read: {reason} at byte {position}";
}
