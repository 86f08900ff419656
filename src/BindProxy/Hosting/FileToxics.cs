using System.Runtime.CompilerServices;
using System.Text.Json;
using BindProxy.Faults;
using BindProxy.Transport;
using Microsoft.Extensions.Logging;

namespace BindProxy.Hosting;

/// <summary>
/// Puts the toxics a route has in the configuration file (<c>Faults</c>) on the route and its
/// members (a Kafka route's broker listeners), at startup, when a member is made, and when a
/// reload changes them. The file's toxics then are exactly the file's; toxics added through the
/// fault API under other names stay (<see cref="RouteFaults.ApplyFile"/>). Each change is logged
/// as the API logs its own.
/// </summary>
internal sealed partial class FileToxics(FaultTable faults, ILogger<FileToxics> logger)
{
    /// <summary>The fault API's rules for a toxic, which the file's were checked by.</summary>
    private static readonly ToxicCheck Check = new(FaultApi.CheckText);

    /// <summary>
    /// The toxics each family's definition was last read into. A Kafka route's broker listeners get
    /// the very instances of their root's, so what a toxic keeps across connections (a kafka_error's
    /// <c>count</c>) is the route's, wherever its requests arrive.
    /// </summary>
    private readonly ConditionalWeakTable<ServedRoute, Tuple<string, Toxic[]>> _parsed = [];

    /// <summary>Applies the file's toxics of <paramref name="root"/> and of each of its members.</summary>
    public void ApplyFamily(ServedRoute root)
    {
        foreach (var route in root.Family)
        {
            Apply(route);
        }
    }

    /// <summary>Applies the file's toxics of one route, as its definition gives them now.</summary>
    public void Apply(ServedRoute route)
    {
        var definition = route.Model.Toxics;
        if (definition is null && faults.Find(route.Name) is null)
        {
            // A route that never had a toxic has no entry, and its connections pay nothing.
            return;
        }

        List<Toxic> toxics = definition is null ? [] : [.. Parsed(route.Root, definition)];

        foreach (var (after, before) in faults.For(route.Name).ApplyFile(toxics, definition) ?? [])
        {
            switch (after, before)
            {
                case ({ } added, null):
                    Log.Added(logger, route.Name, added.Name, added.Describe());
                    break;
                case ({ } changed, { IsFromFile: true }):
                    Log.Changed(logger, route.Name, changed.Name, changed.Describe());
                    break;
                case ({ } replacing, { }):
                    Log.Replaced(logger, route.Name, replacing.Name, replacing.Describe());
                    break;
                case (null, { } removed):
                    Log.Removed(logger, route.Name, removed.Name);
                    break;
            }
        }
    }

    private Toxic[] Parsed(ServedRoute root, string definition)
    {
        lock (_parsed)
        {
            if (_parsed.TryGetValue(root, out var last) && last.Item1 == definition)
            {
                return last.Item2;
            }

            var toxics = new List<Toxic>();
            using var document = JsonDocument.Parse(definition);
            foreach (var body in document.RootElement.EnumerateArray())
            {
                // Checked when the configuration was validated: each reads.
                if (Check.Read(body, (_, _) => { }) is { } toxic)
                {
                    toxics.Add(toxic with { Origin = Toxic.FromFile });
                }
            }

            _parsed.AddOrUpdate(root, Tuple.Create(definition, toxics.ToArray()));
            return [.. toxics];
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1040, LogLevel.Information, "Faults: route {Route}: toxic {Toxic} added from the configuration file: {Toxicdescription}")]
        public static partial void Added(ILogger logger, string route, string toxic, string toxicdescription);

        [LoggerMessage(1041, LogLevel.Information, "Faults: route {Route}: toxic {Toxic} changed from the configuration file: {Toxicdescription}")]
        public static partial void Changed(ILogger logger, string route, string toxic, string toxicdescription);

        [LoggerMessage(1042, LogLevel.Information, "Faults: route {Route}: toxic {Toxic} removed: no longer in the configuration file")]
        public static partial void Removed(ILogger logger, string route, string toxic);

        [LoggerMessage(1043, LogLevel.Warning, "Faults: route {Route}: toxic {Toxic} of the configuration file replaces the one of that name added through the fault API: {Toxicdescription}")]
        public static partial void Replaced(ILogger logger, string route, string toxic, string toxicdescription);
    }
}
