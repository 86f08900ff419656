namespace BindProxy.Tests.Infrastructure;

/// <summary>
/// Tests that bind the shipped configuration's fixed ports (127.0.0.1:19092, admin 127.0.0.1:9901),
/// directly or through <c>check</c>'s test binds, run one at a time and apart from the rest.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ShippedPorts
{
    public const string Name = "shipped ports";
}
