namespace BindProxy.Transport;

/// <summary>A socket's send side as the kernel holds it: unacknowledged and not-yet-sent bytes, the peer's advertised window, and room for more.</summary>
/// <param name="Unacknowledged">Bytes handed to the kernel that the peer has not acknowledged (a FIN counts one).</param>
/// <param name="NotSent">Of those, bytes not even sent yet (the peer's window or congestion holds them).</param>
/// <param name="PeerWindow">The window the peer last advertised; null where the kernel does not say (Linux before 5.4).</param>
/// <param name="Writable">Whether a send would take at least one byte now.</param>
internal readonly record struct SendQueueInfo(int Unacknowledged, int NotSent, int? PeerWindow, bool Writable);
