using System.Globalization;

namespace BindProxy.Forwarding;

/// <summary>Label values for HTTP status codes, made once; anything outside 100-599 shares one value, so an odd upstream cannot grow the series.</summary>
internal static class StatusCodeLabels
{
    private static readonly string[] Codes = [.. Enumerable.Range(0, 600).Select(c => c.ToString(CultureInfo.InvariantCulture))];

    public static string Of(int statusCode) => statusCode is >= 100 and < 600 ? Codes[statusCode] : "other";
}
