namespace BindProxy.Configuration;

/// <summary>The <c>Admin</c> section as the user wrote it: raw strings, validated by <see cref="ConfigValidator"/>.</summary>
internal sealed record AdminConfig
{
    public const string SectionName = "Admin";

    internal static readonly string[] Fields = ["Listen", "AllowNonLoopback"];

    /// <summary><c>ADDR:PORT</c> of the admin HTTP endpoint; <c>off</c> turns it off.</summary>
    public string? Listen { get; init; }

    /// <summary><c>true</c> lets the admin endpoint listen on a non-loopback address.</summary>
    public string? AllowNonLoopback { get; init; }

    /// <summary>Keys present in the section that no field above reads (typos).</summary>
    public IReadOnlyList<string> UnknownFields { get; init; } = [];
}
