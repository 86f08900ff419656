using System.CommandLine;
using System.CommandLine.Parsing;
using System.Net;

namespace BindProxy.Bench.Cli;

/// <summary>Factories for options shared by several subcommands.</summary>
internal static class Options
{
    public static Option<IPEndPoint> Endpoint(string name, string description) => new(name)
    {
        Description = description,
        Required = true,
        CustomParser = ParseEndpoint,
    };

    public static Option<IPEndPoint> Endpoint(string name, string description, IPEndPoint defaultValue) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => defaultValue,
        CustomParser = ParseEndpoint,
    };

    public static Option<IPEndPoint[]> EndpointList(string name, string description) => new(name)
    {
        Description = description,
        Required = true,
        CustomParser = ParseEndpointList,
    };

    public static Option<TimeSpan> Duration(string name, string description, TimeSpan defaultValue) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => defaultValue,
        CustomParser = ParseDuration,
    };

    /// <summary>A duration that may be left out (null), for options whose default depends on others.</summary>
    public static Option<TimeSpan?> OptionalDuration(string name, string description) => new(name)
    {
        Description = description,
        CustomParser = r => ParseDuration(r),
    };

    public static Option<int> Int(string name, string description, int defaultValue, int min, int max)
    {
        var option = new Option<int>(name)
        {
            Description = description,
            DefaultValueFactory = _ => defaultValue,
        };
        option.Validators.Add(result =>
        {
            var value = result.GetValueOrDefault<int>();
            if (value < min || value > max)
            {
                result.AddError($"{name} must be between {min} and {max}, got {value}.");
            }
        });
        return option;
    }

    private static IPEndPoint ParseEndpoint(ArgumentResult result)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : string.Empty;
        if (ValueParsers.TryParseEndpoint(text, out var endpoint))
        {
            return endpoint;
        }

        result.AddError($"'{text}' is not ADDR:PORT.");
        return new IPEndPoint(IPAddress.Loopback, 0);
    }

    private static IPEndPoint[] ParseEndpointList(ArgumentResult result)
    {
        var list = new List<IPEndPoint>();
        foreach (var token in result.Tokens)
        {
            foreach (var part in token.Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (ValueParsers.TryParseEndpoint(part, out var endpoint))
                {
                    list.Add(endpoint);
                }
                else
                {
                    result.AddError($"'{part}' is not ADDR:PORT.");
                }
            }
        }

        if (list.Count == 0)
        {
            result.AddError("At least one ADDR:PORT is needed.");
        }

        return [.. list];
    }

    private static TimeSpan ParseDuration(ArgumentResult result)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : string.Empty;
        if (ValueParsers.TryParseDuration(text, out var duration))
        {
            return duration;
        }

        result.AddError($"'{text}' is not a duration such as 500ms, 5s or 2m.");
        return TimeSpan.Zero;
    }
}
