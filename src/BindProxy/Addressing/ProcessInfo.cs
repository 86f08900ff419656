namespace BindProxy.Addressing;

/// <summary>A local process, told apart from a later one with the same pid by its start time.</summary>
internal sealed record ProcessInfo(int Pid, ulong StartTime, string Name)
{
    public string Key => $"pid:{Pid}@{StartTime}";

    public override string ToString() => $"pid {Pid} {Name}";
}
