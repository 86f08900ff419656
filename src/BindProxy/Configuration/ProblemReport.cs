namespace BindProxy.Configuration;

/// <summary>
/// The words for a configuration that cannot be used, the same on the command line (after
/// <c>error: </c>) and in the log of a rejected reload.
/// </summary>
internal static class ProblemReport
{
    /// <summary>One problem is one line; several get a count and a line each.</summary>
    public static string Describe(IReadOnlyCollection<string> problems) => problems.Count == 1
        ? problems.First()
        : $"the configuration has {problems.Count} problem(s):" + string.Concat(problems.Select(p => $"{Environment.NewLine}  {p}"));

    public static string Describe(IReadOnlyCollection<ConfigError> errors) => Describe([.. errors.Select(e => e.ToString())]);
}
