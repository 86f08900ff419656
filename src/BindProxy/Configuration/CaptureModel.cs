using BindProxy.Addressing;

namespace BindProxy.Configuration;

/// <summary>
/// Validated rolling capture files: their directory (made and found writable), the selectors
/// (those of <c>/api/capture</c>), the legs (<c>both</c>, <c>client</c> or <c>upstream</c>), and the
/// bound on disk: files of about <see cref="RotateBytes"/>, at most <see cref="KeepFiles"/> of them.
/// </summary>
internal sealed record CaptureModel(
    string Directory,
    string? Route,
    string? Client,
    AddressSet? Source,
    int? Pid,
    string? Process,
    string Legs,
    long RotateBytes,
    int KeepFiles)
{
    /// <summary>The values as written in the section, to tell whether a reload changed anything.</summary>
    public string Describe() =>
        $"{Directory} (route={Route ?? "*"}, client={Client ?? "*"}, source={Source?.ToString() ?? "*"}, pid={Pid?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "*"}, " +
        $"process={Process ?? "*"}, legs={Legs}, {RotateBytes} bytes a file, {KeepFiles} files)";
}
