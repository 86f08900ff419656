using System.Text.Json;

namespace BindProxy.Configuration;

/// <summary>A route's <c>Faults</c>: the toxics it carries from the file, checked by the fault API's own rules (<see cref="IToxicCheck"/>).</summary>
internal static class RouteToxics
{
    /// <summary>The route's toxics as a JSON array, every problem of every toxic reported with its place; null when it has none or one is bad.</summary>
    public static string? Validate(RouteConfig route, RouteProtocol protocol, IToxicCheck? check, Action<string, string> error)
    {
        var field = RouteConfig.Fields[nameof(RouteConfig.Faults)];
        if (route.Faults is not { } written || route.MisshapenFields.Any(m => m.Field == field.Name))
        {
            return null;
        }

        if (protocol == RouteProtocol.Http)
        {
            error(field.Path, "applies to Tcp and Kafka routes; an Http route's requests do not pass through toxics");
            return null;
        }

        JsonElement toxics;
        try
        {
            using var document = JsonDocument.Parse(written);
            toxics = document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            error(field.Path, $"is not JSON ({e.Message}); expected an array of toxics such as {field.Example}");
            return null;
        }

        if (toxics.ValueKind != JsonValueKind.Array)
        {
            error(field.Path, $"expected an array of toxics such as {field.Example}");
            return null;
        }

        if (toxics.GetArrayLength() == 0)
        {
            return null;
        }

        if (check is null)
        {
            // A validator made without the fault rules (a command that serves no file routes) takes no toxics.
            error(field.Path, "toxics are not read here");
            return null;
        }

        var problems = check.Check(toxics);
        foreach (var (at, problem) in problems)
        {
            error($"{field.Path}:{at}", problem);
        }

        return problems.Count == 0 ? written : null;
    }
}
