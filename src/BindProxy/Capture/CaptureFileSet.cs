using System.Globalization;

namespace BindProxy.Capture;

/// <summary>
/// The rolling files of a capture written to a directory: <c>bindproxy-TIME-N.pcapng</c>, a new one
/// once the current holds <see cref="RotateBytes"/>, and at most <see cref="KeepFiles"/> of them in
/// the directory (those a previous run left included), the oldest deleted as a new one begins.
/// </summary>
internal sealed class CaptureFileSet
{
    public const string Prefix = "bindproxy-";
    public const string Extension = ".pcapng";

    private readonly string _directory;
    private readonly Queue<string> _files;
    private int _sequence;

    public CaptureFileSet(string directory, long rotateBytes, int keepFiles)
    {
        _directory = directory;
        RotateBytes = rotateBytes;
        KeepFiles = keepFiles;
        Directory.CreateDirectory(directory);
        // Names begin with the time they were begun, so they sort oldest first.
        _files = new Queue<string>(Directory.EnumerateFiles(directory, Prefix + "*" + Extension).Order(StringComparer.Ordinal));
    }

    public long RotateBytes { get; }

    public int KeepFiles { get; }

    /// <summary>The file being written; null before the first.</summary>
    public string? Current { get; private set; }

    /// <summary>Files deleted to keep the bound.</summary>
    public int Deleted { get; private set; }

    /// <summary>Begins the next file, then deletes the oldest beyond the bound.</summary>
    public Stream Next()
    {
        var name = $"{Prefix}{DateTime.UtcNow.ToString("yyyyMMdd-HHmmss-fff", CultureInfo.InvariantCulture)}-{++_sequence:D4}{Extension}";
        var path = Path.Combine(_directory, name);
        var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read | FileShare.Delete, bufferSize: 0, useAsync: true);
        Current = path;
        _files.Enqueue(path);
        while (_files.Count > KeepFiles)
        {
            var oldest = _files.Dequeue();
            try
            {
                File.Delete(oldest);
                Deleted++;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Gone already, or not ours to delete: the bound counts only what it can remove.
            }
        }

        return stream;
    }
}
