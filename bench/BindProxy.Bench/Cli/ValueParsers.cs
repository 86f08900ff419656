using System.Globalization;
using System.Net;

namespace BindProxy.Bench.Cli;

/// <summary>Parses the textual values the subcommands accept: endpoints and durations.</summary>
internal static class ValueParsers
{
    /// <summary>Parses <c>ADDR:PORT</c> or <c>[V6ADDR]:PORT</c>; a port is required.</summary>
    public static bool TryParseEndpoint(string text, out IPEndPoint endpoint)
    {
        endpoint = new IPEndPoint(IPAddress.Any, 0);
        if (!IPEndPoint.TryParse(text.Trim(), out var parsed) || parsed is null)
        {
            return false;
        }

        // IPEndPoint.TryParse accepts a bare address with port 0; a target without a port is a typo.
        if (parsed.Port == 0 && !text.TrimEnd().EndsWith(":0", StringComparison.Ordinal))
        {
            return false;
        }

        endpoint = parsed;
        return true;
    }

    /// <summary>Parses <c>500ms</c>, <c>5s</c>, <c>2m</c>, <c>1.5s</c>, or a bare number of seconds.</summary>
    public static bool TryParseDuration(string text, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        var s = text.Trim().ToLowerInvariant();
        double scaleSeconds;
        if (s.EndsWith("ms", StringComparison.Ordinal))
        {
            scaleSeconds = 0.001;
            s = s[..^2];
        }
        else if (s.EndsWith('s'))
        {
            scaleSeconds = 1;
            s = s[..^1];
        }
        else if (s.EndsWith('m'))
        {
            scaleSeconds = 60;
            s = s[..^1];
        }
        else if (s.EndsWith('h'))
        {
            scaleSeconds = 3600;
            s = s[..^1];
        }
        else
        {
            scaleSeconds = 1;
        }

        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
            || value < 0 || double.IsNaN(value) || value * scaleSeconds > TimeSpan.MaxValue.TotalSeconds / 2)
        {
            return false;
        }

        duration = TimeSpan.FromSeconds(value * scaleSeconds);
        return true;
    }
}
