namespace BindProxy.Transport;

/// <summary>
/// Descriptors taken from a <see cref="DescriptorBudget"/> for one connection, passed along with
/// the connection's sockets; whoever closes the last of them gives the reservation back, once.
/// </summary>
internal readonly record struct DescriptorReservation(DescriptorBudget? Budget, int Count)
{
    public void Return() => Budget?.Return(Count);
}
