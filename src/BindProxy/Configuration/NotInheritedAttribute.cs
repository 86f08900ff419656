namespace BindProxy.Configuration;

/// <summary>
/// Marks a <see cref="RouteModel"/> property that a member route (a Kafka broker listener's) does
/// not take from its root, with the reason. Every other property is inherited: a member is a copy
/// of its root, so a setting added to the model reaches broker routes without a line of its own.
/// </summary>
[AttributeUsage(AttributeTargets.Property, AllowMultiple = false)]
internal sealed class NotInheritedAttribute(string reason) : Attribute
{
    public string Reason { get; } = reason;
}
