namespace BindProxy.Configuration;

/// <summary>The outcome of validation: a model when there are no errors, and every error otherwise.</summary>
internal sealed record ValidationResult(ProxyModel? Model, IReadOnlyList<ConfigError> Errors, IReadOnlyList<string> Warnings)
{
    public bool IsValid => Errors.Count == 0;
}
