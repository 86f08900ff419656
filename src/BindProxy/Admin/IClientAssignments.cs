namespace BindProxy.Admin;

/// <summary>Which source address each client leaves from, as the admin API and status page show it.</summary>
internal interface IClientAssignments
{
    IReadOnlyList<AssignmentView> Current();
}
