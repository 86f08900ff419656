using System.Collections.Concurrent;
using System.Net;
using BindProxy.Configuration;
using Microsoft.Extensions.Logging;

namespace BindProxy.Forwarding;

/// <summary>
/// An upstream that refuses connections is the first thing a new user meets (the shipped route
/// points at localhost:9092, where often nothing runs yet). The first refusal of a streak says
/// what to do in plain words; later ones go to debug level until a connection to that route's
/// upstream succeeds again, so a client that retries does not bury the advice.
/// </summary>
internal sealed partial class UpstreamRefusals(ILogger<UpstreamRefusals> logger)
{
    private readonly ConcurrentDictionary<string, byte> _refusing = new(StringComparer.Ordinal);

    // Read on every successful connect: a plain field check while nothing refuses.
    private int _refusingCount;

    /// <summary>Logs a refused upstream connect for <paramref name="client"/>: the advice once per streak, then quietly.</summary>
    public void Refused(RouteModel route, IPEndPoint client, string detail)
    {
        if (!_refusing.TryAdd(route.Name, 0))
        {
            Log.RefusedAgain(logger, route.Name, client, detail);
            return;
        }

        Interlocked.Increment(ref _refusingCount);
        Log.Refused(logger, route.Name, client, detail, route.Upstream.Text, Advice(route));
    }

    /// <summary>A connection of <paramref name="route"/> reached its upstream: a refusal streak, if any, is over.</summary>
    public void Connected(RouteModel route)
    {
        if (Volatile.Read(ref _refusingCount) == 0 || !_refusing.TryRemove(route.Name, out _))
        {
            return;
        }

        Interlocked.Decrement(ref _refusingCount);
        Log.Reachable(logger, route.Name, route.Upstream.Text);
    }

    internal static string Advice(RouteModel route)
    {
        if (route.Parent is { } bootstrap)
        {
            return $"the cluster behind route '{bootstrap.Name}' advertises this broker, but it does not accept connections: is it down or restarting?";
        }

        if (route.Intercept is not null)
        {
            return "start the server the client connects to (without the proxy it would be refused all the same), or check the address the client uses";
        }

        return route.Protocol == RouteProtocol.Kafka
            ? $"start a Kafka broker at {route.Upstream.Text}, or point the route's Upstream at your cluster's bootstrap address " +
              "(the configuration file is reloaded on save), or see BindProxy work without a broker: dotnet run --project src/BindProxy.Demo"
            : $"start the server at {route.Upstream.Text}, or point the route's Upstream at the server you meant (the configuration file is reloaded on save)";
    }

    private static partial class Log
    {
        [LoggerMessage(206, LogLevel.Warning, "{Route}: {Client} closed: connect refused: {Detail}. Nothing accepts connections at {Upstream}; to fix it, {Advice}. Further refusals are logged at debug level until a connection gets through")]
        public static partial void Refused(ILogger logger, string route, IPEndPoint client, string detail, string upstream, string advice);

        [LoggerMessage(207, LogLevel.Debug, "{Route}: {Client} closed: connect refused: {Detail}")]
        public static partial void RefusedAgain(ILogger logger, string route, IPEndPoint client, string detail);

        [LoggerMessage(208, LogLevel.Information, "{Route}: {Upstream} accepts connections again")]
        public static partial void Reachable(ILogger logger, string route, string upstream);
    }
}
