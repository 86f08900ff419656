using System.Text.Json;

namespace BindProxy.Configuration;

/// <summary>
/// Judges a route's <c>Faults</c> (a JSON array of toxics in toxiproxy's shape) by the rules the
/// fault API applies to a toxic it is sent, with the same messages; implemented where toxics are
/// defined.
/// </summary>
internal interface IToxicCheck
{
    /// <summary>
    /// Every problem of every toxic in <paramref name="toxics"/>, each with its place within the
    /// array (<c>1:attributes:latency</c>, <c>0:type</c>, <c>2</c>); empty when all are good.
    /// </summary>
    IReadOnlyList<(string At, string Problem)> Check(JsonElement toxics);
}
