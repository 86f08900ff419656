using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;

namespace BindProxy.Transport;

/// <summary>Accepts through <see cref="Socket.AcceptAsync(CancellationToken)"/> (for the pipe engine).</summary>
internal sealed class SocketListener(Socket socket, ListenerContext context) : ProxyListener(socket, context)
{
    public override async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            Socket accepted;
            try
            {
                accepted = await ListenSocket.AcceptAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (ObjectDisposedException)
            {
                return null;
            }
            catch (OperationCanceledException)
            {
                return null;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.OperationAborted or SocketError.Interrupted)
            {
                return null;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
            {
                continue; // the client gave up while queued
            }
            catch (SocketException e)
            {
                await BackOffAsync(e.SocketErrorCode, e.Message, cancellationToken).ConfigureAwait(false);
                continue;
            }

            if (!TryReserve(accepted.RemoteEndPoint as IPEndPoint, out var reservation))
            {
                Reset(accepted);
                continue;
            }

            try
            {
                accepted.NoDelay = true;
                return new SocketInbound(accepted, Route.Route, SpecificAddress, Options, reservation);
            }
            catch (SocketException)
            {
                Reset(accepted); // gone before its addresses could be read
                reservation.Return();
            }
        }
    }

    private static void Reset(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (SocketException)
        {
        }

        socket.Dispose();
    }
}
