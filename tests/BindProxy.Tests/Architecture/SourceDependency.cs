namespace BindProxy.Tests.Architecture;

/// <summary>One place where a file of the product names another of its namespaces.</summary>
/// <param name="From">The top namespace under BindProxy the file is in ("BindProxy" for the root).</param>
/// <param name="To">The top namespace it names.</param>
/// <param name="Line">1-based.</param>
internal sealed record SourceDependency(string File, int Line, string From, string To, string Text);
