namespace BindProxy.Configuration;

/// <summary>"Did you mean": the known key a mistyped one is closest to, when it is close enough.</summary>
internal static class KeySuggestions
{
    /// <summary>The nearest of <paramref name="known"/> to <paramref name="key"/>, or null when none is a near miss.</summary>
    public static string? Closest(string key, IEnumerable<string> known)
    {
        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (var candidate in known)
        {
            int distance = Distance(key.ToUpperInvariant(), candidate.ToUpperInvariant());
            if (distance < bestDistance && distance <= Allowed(candidate))
            {
                best = candidate;
                bestDistance = distance;
            }
        }

        return best;
    }

    // One slip in a short name, two in a longer one, three in a long one: "Admn", "Rotues",
    // "DrainTimout", "AssignmentIdelTimeout" are caught; unrelated words are not.
    private static int Allowed(string candidate) => candidate.Length switch
    {
        <= 4 => 1,
        <= 10 => 2,
        _ => 3,
    };

    /// <summary>Edits (insert, delete, substitute, swap two neighbours) between two strings.</summary>
    internal static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++)
        {
            d[i, 0] = i;
        }

        for (int j = 0; j <= b.Length; j++)
        {
            d[0, j] = j;
        }

        for (int i = 1; i <= a.Length; i++)
        {
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                {
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
                }
            }
        }

        return d[a.Length, b.Length];
    }
}
