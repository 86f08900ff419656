using System.Runtime.InteropServices;

namespace BindProxy.Interception;

/// <summary>
/// The kernel's id of a cgroup v2 group, which is what an nft <c>socket cgroupv2</c> rule holds:
/// nft turns the group's path into its id when the rule is loaded. A group removed and made again
/// at the same path (a systemd unit restarting) is a new group with a new id, which the rule does
/// not match, so the id tells when a rule must be loaded again. The id is the group's file handle
/// on the cgroup file system (<c>name_to_handle_at</c>), as nft reads it.
/// </summary>
internal static unsafe partial class CgroupId
{
    private const int AtFdCwd = -100;
    private const int HandleCapacity = 64;

    /// <summary>The id of the group at <paramref name="directory"/>, or null when there is none (it does not exist).</summary>
    public static ulong? Of(string directory)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        // struct file_handle { u32 handle_bytes; int handle_type; unsigned char f_handle[handle_bytes]; }
        byte* handle = stackalloc byte[8 + HandleCapacity];
        *(uint*)handle = HandleCapacity;
        int mountId;
        if (NameToHandleAt(AtFdCwd, directory, handle, &mountId, 0) != 0 || *(uint*)handle < sizeof(ulong))
        {
            return null;
        }

        return *(ulong*)(handle + 8);
    }

    [LibraryImport("libc", EntryPoint = "name_to_handle_at", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int NameToHandleAt(int dirfd, string path, byte* handle, int* mountId, int flags);
}
