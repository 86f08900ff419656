using System.Reflection;
using BindProxy.Configuration;
using Microsoft.Extensions.Logging;

namespace BindProxy.Tests.Architecture;

/// <summary>Log event ids name one kind of line each, so a log pipeline can filter on them.</summary>
public sealed class LogEventTests
{
    [Fact]
    public void Every_log_event_id_is_used_once()
    {
        var events = typeof(RouteModel).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Select(m => (Method: m, Attribute: m.GetCustomAttribute<LoggerMessageAttribute>()))
            .Where(e => e.Attribute is not null)
            .Select(e => (e.Attribute!.EventId, Name: $"{e.Method.DeclaringType!.DeclaringType?.Name ?? e.Method.DeclaringType!.Name}.{e.Method.Name}"))
            .ToList();

        Assert.True(events.Count > 30, $"found only {events.Count} log events; is the attribute still read this way?");
        var reused = events.GroupBy(e => e.EventId).Where(g => g.Count() > 1)
            .Select(g => $"{g.Key}: {string.Join(", ", g.Select(e => e.Name))}").ToList();
        Assert.True(reused.Count == 0, "event ids used more than once:\n" + string.Join("\n", reused));
    }
}
