using System.Net;
using BindProxy.Kafka.Protocol;

namespace BindProxy.Kafka.Conversation;

/// <summary>
/// Which exchanges a reader wants: every criterion set must hold. <see cref="Route"/> matches a
/// route family's root or one of its broker routes; <see cref="Client"/> the client.id;
/// <see cref="Source"/> the source address (127.0.0.N, with or without a port) or the client's own
/// address; <see cref="Api"/> the API's name (case ignored); <see cref="Topic"/> a topic the request or
/// response names (its body decoded); <see cref="ErrorsOnly"/> an error in the response, or none
/// before the connection ended.
/// </summary>
internal sealed record ExchangeFilter(string? Route = null, string? Client = null, string? Source = null, string? Api = null, string? Topic = null, bool ErrorsOnly = false)
{
    public static readonly ExchangeFilter All = new();

    /// <summary>Whether exchanges of client <paramref name="clientId"/> on <paramref name="route"/> (of family <paramref name="root"/>) can match: what deciding to decode needs.</summary>
    public bool MayMatch(string root, string route, string? clientId) =>
        (Route is null || string.Equals(Route, root, StringComparison.Ordinal) || string.Equals(Route, route, StringComparison.Ordinal))
        && (Client is null || string.Equals(Client, clientId, StringComparison.Ordinal));

    public bool Matches(KafkaExchange exchange)
    {
        var connection = exchange.Connection;
        if (Route is not null && !string.Equals(Route, connection.Root, StringComparison.Ordinal) && !string.Equals(Route, connection.Route, StringComparison.Ordinal))
        {
            return false;
        }

        if (Client is not null && !string.Equals(Client, exchange.ClientId, StringComparison.Ordinal))
        {
            return false;
        }

        if (Source is not null && !MatchesAddress(Source, connection.Source) && !MatchesAddress(Source, connection.Client))
        {
            return false;
        }

        if (Api is not null && !string.Equals(Api, KafkaApis.NameOf(exchange.ApiKey), StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        if (Topic is not null && !(exchange.Request?.Names(Topic) ?? false) && !(exchange.Response?.Names(Topic) ?? false))
        {
            return false;
        }

        return !ErrorsOnly || exchange.HasError;
    }

    private static bool MatchesAddress(string text, IPEndPoint? endPoint) =>
        endPoint is not null && (string.Equals(text, endPoint.ToString(), StringComparison.Ordinal) || string.Equals(text, endPoint.Address.ToString(), StringComparison.Ordinal));
}
