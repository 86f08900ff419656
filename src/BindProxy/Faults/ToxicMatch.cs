using System.Text.Json;
using System.Text.RegularExpressions;
using BindProxy.Addressing;

namespace BindProxy.Faults;

/// <summary>
/// Which connections a toxic is aimed at: a Kafka client.id (a regular expression, whole id),
/// a client address (an address, range, CIDR block or list), a process id or a process name.
/// Every part given must match; a toxic without a match applies to every connection, as in toxiproxy.
/// </summary>
internal sealed record ToxicMatch(Regex? ClientId, AddressSet? Source, int? Pid, string? Process)
{
    private static readonly TimeSpan RegexTimeout = TimeSpan.FromMilliseconds(100);

    /// <summary>True when a process must be looked up to answer.</summary>
    public bool NeedsProcess => Pid is not null || Process is not null;

    public bool Matches(ConnectionIdentity who)
    {
        if (Source is { } source && !source.Contains(who.Client.Address.IsIPv4MappedToIPv6 ? who.Client.Address.MapToIPv4() : who.Client.Address))
        {
            return false;
        }

        if (NeedsProcess)
        {
            if (who.Process is not { } process || (Pid is { } pid && process.Pid != pid) || (Process is { } name && process.Name != name))
            {
                return false;
            }
        }

        if (ClientId is { } clientId)
        {
            try
            {
                return who.ClientId is { } id && clientId.IsMatch(id);
            }
            catch (RegexMatchTimeoutException)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// False when a connection from <paramref name="client"/> that has no Kafka client.id (a plain
    /// Tcp connection) cannot match, judged without looking anything up: a process part is taken
    /// as possibly matching.
    /// </summary>
    public bool CouldMatch(System.Net.IPEndPoint client) =>
        ClientId is null && (Source is not { } source || source.Contains(client.Address.IsIPv4MappedToIPv6 ? client.Address.MapToIPv4() : client.Address));

    /// <summary>As written back in the API: only the parts given.</summary>
    public void Write(Utf8JsonWriter writer)
    {
        writer.WriteStartObject("match");
        if (ClientId is not null)
        {
            writer.WriteString("client_id", ClientId.ToString()[4..^2]);
        }

        if (Source is not null)
        {
            writer.WriteString("source", Source.ToString());
        }

        if (Pid is { } pid)
        {
            writer.WriteNumber("pid", pid);
        }

        if (Process is not null)
        {
            writer.WriteString("process", Process);
        }

        writer.WriteEndObject();
    }

    public override string ToString() => string.Join(' ', new[]
    {
        ClientId is null ? null : $"client_id~{ClientId.ToString()[4..^2]}",
        Source is null ? null : $"source {Source}",
        Pid is null ? null : $"pid {Pid}",
        Process is null ? null : $"process {Process}",
    }.Where(p => p is not null));

    /// <summary>Reads a <c>match</c> object; null with a message when it is not one.</summary>
    public static ToxicMatch? Read(JsonElement match, out string? problem)
    {
        problem = null;
        if (match.ValueKind != JsonValueKind.Object)
        {
            problem = "match must be a JSON object with client_id, source, pid or process";
            return null;
        }

        Regex? clientId = null;
        AddressSet? source = null;
        int? pid = null;
        string? process = null;
        foreach (var part in match.EnumerateObject())
        {
            switch (part.Name)
            {
                case "client_id" when part.Value.ValueKind == JsonValueKind.String:
                    try
                    {
                        // Anchored: the pattern is the whole client.id, as a name would be.
                        clientId = new Regex($"^(?:{part.Value.GetString()})$", RegexOptions.CultureInvariant, RegexTimeout);
                    }
                    catch (ArgumentException e)
                    {
                        problem = $"match client_id is not a regular expression: {e.Message}";
                        return null;
                    }

                    break;
                case "source" when part.Value.ValueKind == JsonValueKind.String:
                    if (!AddressSet.TryParse(part.Value.GetString(), out source, out var error))
                    {
                        problem = $"match source: {error}";
                        return null;
                    }

                    break;
                case "pid" when part.Value.ValueKind == JsonValueKind.Number && part.Value.TryGetInt32(out int id) && id > 0:
                    pid = id;
                    break;
                case "process" when part.Value.ValueKind == JsonValueKind.String && part.Value.GetString() is { Length: > 0 } name:
                    process = name;
                    break;
                default:
                    problem = $"match {part.Name}: expected client_id (a regular expression), source (an address, range or CIDR block), pid (a number) or process (a name); got {part.Value.GetRawText()}";
                    return null;
            }
        }

        return new ToxicMatch(clientId, source, pid, process);
    }
}
