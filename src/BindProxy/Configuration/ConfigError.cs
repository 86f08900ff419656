namespace BindProxy.Configuration;

/// <summary>One problem in a configuration, naming the route and the field.</summary>
internal sealed record ConfigError(string Route, string Field, string Message)
{
    public override string ToString() =>
        Route.Length == 0 ? $"{Field}: {Message}" : $"route '{Route}': {Field}: {Message}";
}
