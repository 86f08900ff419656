using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace BindProxy.Interception;

/// <summary>
/// nftables from this process: libnftables (the library the <c>nft</c> command is built on) takes
/// a ruleset in nft's own syntax and applies it over netlink as one transaction, so a table
/// with its set and rules appears whole or not at all, and no <c>nft</c> process is started per
/// change. Building netlink messages by hand (libnftnl) would mean re-implementing nft's
/// compiler for the few rules needed; the text form is also what a person reads in
/// <c>nft list ruleset</c>.
/// </summary>
/// <remarks>
/// The library is loaded by name at run time (Debian package <c>libnftables1</c>), so a machine
/// without it gets a sentence instead of a <see cref="DllNotFoundException"/>. One context serves
/// every call, one call at a time: libnftables contexts are not thread-safe.
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed unsafe class Nftables : IDisposable
{
    public const string LibraryName = "libnftables.so.1";

    private readonly Lock _lock = new();
    private readonly IntPtr _library;
    private readonly delegate* unmanaged<IntPtr, byte*, int> _runCommand;
    private readonly delegate* unmanaged<IntPtr, byte*> _outputBuffer;
    private readonly delegate* unmanaged<IntPtr, byte*> _errorBuffer;
    private readonly delegate* unmanaged<IntPtr, void> _free;
    private IntPtr _context;

    private Nftables(IntPtr library, IntPtr context)
    {
        _library = library;
        _context = context;
        _runCommand = (delegate* unmanaged<IntPtr, byte*, int>)NativeLibrary.GetExport(library, "nft_run_cmd_from_buffer");
        _outputBuffer = (delegate* unmanaged<IntPtr, byte*>)NativeLibrary.GetExport(library, "nft_ctx_get_output_buffer");
        _errorBuffer = (delegate* unmanaged<IntPtr, byte*>)NativeLibrary.GetExport(library, "nft_ctx_get_error_buffer");
        _free = (delegate* unmanaged<IntPtr, void>)NativeLibrary.GetExport(library, "nft_ctx_free");
    }

    /// <summary>Opens a context; false with the reason when libnftables is missing.</summary>
    public static bool TryOpen(out Nftables? nftables, out string error)
    {
        nftables = null;
        if (!NativeLibrary.TryLoad(LibraryName, out var library))
        {
            error = $"{LibraryName} cannot be loaded (on Debian/Ubuntu: apt-get install libnftables1)";
            return false;
        }

        try
        {
            var create = (delegate* unmanaged<uint, IntPtr>)NativeLibrary.GetExport(library, "nft_ctx_new");
            var bufferOutput = (delegate* unmanaged<IntPtr, int>)NativeLibrary.GetExport(library, "nft_ctx_buffer_output");
            var bufferError = (delegate* unmanaged<IntPtr, int>)NativeLibrary.GetExport(library, "nft_ctx_buffer_error");
            var context = create(0); // NFT_CTX_DEFAULT
            if (context == IntPtr.Zero)
            {
                error = "nft_ctx_new failed";
                NativeLibrary.Free(library);
                return false;
            }

            // Output and errors go to buffers read after each command instead of to stdout/stderr.
            bufferOutput(context);
            bufferError(context);
            nftables = new Nftables(library, context);
            error = "";
            return true;
        }
        catch (EntryPointNotFoundException e)
        {
            NativeLibrary.Free(library);
            error = $"{LibraryName} lacks {e.Message}";
            return false;
        }
    }

    /// <summary>Runs nft commands (one ruleset text, applied as one transaction).</summary>
    public NftResult Run(string commands)
    {
        var text = System.Text.Encoding.UTF8.GetBytes(commands + "\0");
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_context == IntPtr.Zero, this);
            int rc;
            fixed (byte* buffer = text)
            {
                rc = _runCommand(_context, buffer);
            }

            // Each getter hands out what was buffered since the last call and resets it.
            var output = Marshal.PtrToStringUTF8((IntPtr)_outputBuffer(_context)) ?? "";
            var error = Marshal.PtrToStringUTF8((IntPtr)_errorBuffer(_context)) ?? "";
            return new NftResult(rc == 0, output, error.Trim());
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_context != IntPtr.Zero)
            {
                _free(_context);
                _context = IntPtr.Zero;
                NativeLibrary.Free(_library);
            }
        }
    }
}
