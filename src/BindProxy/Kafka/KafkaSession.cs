using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using BindProxy.Configuration;
using BindProxy.Forwarding;
using BindProxy.Kafka.Brokers;
using BindProxy.Kafka.Faults;
using BindProxy.Kafka.Conversation;
using BindProxy.Kafka.Framing;
using BindProxy.Kafka.Protocol;
using BindProxy.Kafka.Rewriting;
using BindProxy.Transport;
using Microsoft.Extensions.Logging;

namespace BindProxy.Kafka;

/// <summary>
/// Forwards one Kafka connection. Requests pass through untouched (large ones streamed) after
/// their header is noted by correlation id; responses that can carry broker addresses are
/// rewritten to the proxy's own, everything else is forwarded as the original slices. The route's
/// Kafka toxics (<see cref="Faults"/>) may delay, swallow or change a response, or keep a request
/// from the broker and answer it in its place.
/// </summary>
[SuppressMessage("Design", "CA1001", Justification = "_toClient's wait handle is never asked for, so it holds nothing to dispose.")]
internal sealed partial class KafkaSession : IKafkaSessionInfo
{
    /// <summary>A request larger than this is streamed through once its header has arrived, not buffered whole.</summary>
    public const int StreamRequestsAbove = 64 * 1024;

    /// <summary>
    /// A response larger than this that no rewrite needs is passed on as its bytes arrive (cut
    /// through), not held until it is whole; it stays in the pipe until it is, for the conversation.
    /// </summary>
    public const int PassResponsesAbove = 64 * 1024;

    /// <summary>Requests awaiting a response on one connection; librdkafka keeps far fewer in flight.</summary>
    public const int MaxInFlight = 10_000;

    /// <summary>
    /// ApiVersions conflicts already reported, by cluster (bootstrap route) and entry: every
    /// connection's ApiVersions exchange would otherwise repeat the same warning.
    /// </summary>
    private static readonly ConcurrentDictionary<(string Cluster, ApiVersionConflict Conflict), byte> s_reportedConflicts = new();

    private readonly PipeSocket _client;
    private readonly PipeSocket _upstream;
    private readonly IBrokerAddressMapper _mapper;
    private readonly int _maxFrameSize;
    private readonly RouteModel _route;
    private readonly ILogger _logger;
    private readonly CorrelationTracker _tracker = new(MaxInFlight);
    private readonly ArrayBufferWriter<byte> _rewritten = new();

    // Requests awaiting a response, in the order they came, with the answers a fault made up for
    // some of them: Kafka clients take a connection's responses in request order, so an answer
    // goes out only after the broker's responses to the requests before it. Everything written
    // to the client is written under _toClient.
    private readonly Queue<(int CorrelationId, byte[]? Answer)> _order = new();
    private readonly SemaphoreSlim _toClient = new(1, 1);
    private volatile string? _clientId;
    private long _partialSinceTicks;
    private bool _saslTokensFollow;

    /// <summary>The exchange of the Produce request being streamed through, while its bytes pass and the conversation reads them.</summary>
    private KafkaExchange? _streamed;

    /// <summary>The large response being cut through: its length (0 when none), bytes sent so far, and correlation id.</summary>
    private long _passingLength;
    private long _passedLength;
    private int _passingCorrelationId;

    /// <param name="mapper">
    /// Decides the broker addresses the client is told; an <see cref="IReconcilingBrokerMapper"/>
    /// has the brokers a response names made reachable first.
    /// </param>
    /// <param name="route">The route the connection is served with (a broker listener's for a broker connection).</param>
    public KafkaSession(PipeSocket client, PipeSocket upstream, IBrokerAddressMapper mapper, int maxFrameSize, RouteModel route, ILogger logger)
    {
        _client = client;
        _upstream = upstream;
        _mapper = mapper;
        _maxFrameSize = maxFrameSize;
        _route = route;
        _logger = logger;
    }

    /// <summary>The client.id from the request headers, once one has been seen.</summary>
    public string? ClientId => _clientId;

    /// <summary>The route's Kafka toxics, asked about every request and response; null for none.</summary>
    public IKafkaFaults? Faults { get; init; }

    /// <summary>
    /// Records this connection's exchanges in its clients' conversations (which also count them for
    /// the metrics); null records nothing.
    /// </summary>
    public ConnectionExchanges? Exchanges { get; init; }

    /// <summary>
    /// When (<see cref="Environment.TickCount64"/>) the client left a request incomplete, or 0 when
    /// none is pending; a client that stalls mid-frame is closed after the route's FrameTimeout.
    /// </summary>
    public long PartialSinceTicks => Interlocked.Read(ref _partialSinceTicks);

    /// <summary>Requests forwarded so far.</summary>
    public long RequestCount { get; private set; }

    /// <summary>Why the connection was closed by the proxy for a protocol problem, if it was.</summary>
    public string? ProtocolError { get; private set; }

    public async Task<CloseReason> ForwardAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await Forwarder.RunAsync(_client, _upstream, RequestsAsync(), ResponsesAsync(), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Exchanges?.OnClose();
        }
    }

    // ---- client → upstream -------------------------------------------------------------------

    private async Task<PumpEnd> RequestsAsync()
    {
        var input = _client.Input;
        long streaming = 0; // bytes of a large request still to pass through as they arrive
        while (true)
        {
            var result = await input.ReadAsync().ConfigureAwait(false);
            var buffer = result.Buffer;

            if (streaming > 0 && !buffer.IsEmpty)
            {
                long take = Math.Min(streaming, buffer.Length);
                if (!await SendAsync(_upstream, buffer.Slice(0, take)).ConfigureAwait(false))
                {
                    input.AdvanceTo(buffer.End);
                    return PumpEnd.DestinationFailed;
                }

                if (_streamed is { } streamed)
                {
                    Exchanges?.OnStreamed(streamed, buffer.Slice(0, take));
                }

                streaming -= take;
                buffer = buffer.Slice(take);
                if (streaming == 0)
                {
                    _streamed = null;
                }
            }

            var batch = buffer; // whole requests are sent together
            long batchLength = 0;
            string? error = null;
            while (streaming == 0 && error is null)
            {
                var status = KafkaFrameReader.TryReadFrame(ref buffer, _maxFrameSize, out var frame, out var frameError);
                if (status == FrameReadStatus.Frame)
                {
                    error = Track(frame, frame.Length, whole: true, out bool forward);
                    if (error is null && forward)
                    {
                        batchLength += frame.Length;
                    }
                    else if (error is null)
                    {
                        // Kept from the broker by a fault: the requests before it go now, those after start a new batch.
                        if ((batchLength > 0 && !await SendAsync(_upstream, batch.Slice(0, batchLength)).ConfigureAwait(false)) ||
                            !await SendAnswersAsync().ConfigureAwait(false))
                        {
                            input.AdvanceTo(buffer.End);
                            return PumpEnd.DestinationFailed;
                        }

                        batch = buffer;
                        batchLength = 0;
                    }

                    continue;
                }

                if (status == FrameReadStatus.Error)
                {
                    error = Describe(frameError, buffer);
                    break;
                }

                // Incomplete: a large request is streamed once its header is in.
                if (buffer.Length >= KafkaFrameReader.SizePrefixLength &&
                    BinaryPrimitives.ReadInt32BigEndian(FirstBytes(buffer)) > StreamRequestsAbove &&
                    KafkaRequestHeader.TryParse(buffer, out _) == MalformedReason.None)
                {
                    error = Track(buffer, KafkaFrameReader.SizePrefixLength + (long)BinaryPrimitives.ReadInt32BigEndian(FirstBytes(buffer)), whole: false, out _);
                    if (error is null)
                    {
                        streaming = KafkaFrameReader.BytesNeeded(buffer);
                        batchLength += buffer.Length;
                        buffer = buffer.Slice(buffer.End);
                    }
                }

                break;
            }

            if (batchLength > 0 && !await SendAsync(_upstream, batch.Slice(0, batchLength)).ConfigureAwait(false))
            {
                input.AdvanceTo(buffer.End);
                return PumpEnd.DestinationFailed;
            }

            if (error is not null)
            {
                Fail(error);
                input.AdvanceTo(buffer.End);
                return PumpEnd.SourceReset;
            }

            if (result.IsCompleted && _client.ReceiveEnd == ReceiveEnd.Fin && (streaming > 0 || !buffer.IsEmpty))
            {
                // A FIN in the middle of a frame: passing the FIN on would leave the broker to
                // guess; the client gets a line that says what it did instead.
                Fail($"the client closed its side {Truncation(buffer, streaming, "request")}");
                input.AdvanceTo(buffer.End);
                return PumpEnd.SourceReset;
            }

            input.AdvanceTo(buffer.Start, buffer.End);
            if (buffer.IsEmpty && streaming == 0)
            {
                Interlocked.Exchange(ref _partialSinceTicks, 0);
            }
            else if (Interlocked.Read(ref _partialSinceTicks) == 0)
            {
                Interlocked.Exchange(ref _partialSinceTicks, Environment.TickCount64);
            }

            if (result.IsCompleted || result.IsCanceled)
            {
                return Forwarder.End(_client, _upstream);
            }
        }
    }

    /// <summary>
    /// Notes what a request will be answered with, and records it in the conversation; returns an
    /// error text when the client must be closed. <paramref name="request"/> is the whole frame, or
    /// the start of one streamed through (<paramref name="frameLength"/> bytes long). <paramref name="forward"/>
    /// is false for a request a fault keeps from the broker (its answer, if any, is queued).
    /// </summary>
    private string? Track(in ReadOnlySequence<byte> request, long frameLength, bool whole, out bool forward)
    {
        TrackStatus status;
        bool expectsResponse = false;
        var verdict = RequestVerdict.Forwarded;
        if (KafkaRequestHeader.TryParse(request, out var header) != MalformedReason.None)
        {
            status = TrackStatus.Malformed;
        }
        else
        {
            expectsResponse = ProduceRequestInspector.ExpectsResponse(request, header);
            if (Faults is { } faults)
            {
                verdict = faults.OnRequest(request, header, whole, expectsResponse);
            }

            status = !expectsResponse ? TrackStatus.NoResponseExpected
                : !verdict.Forward ? TrackStatus.Tracked
                : _tracker.Track(header.CorrelationId, header.ApiKey, header.ApiVersion);
            if (status == TrackStatus.Tracked)
            {
                lock (_order)
                {
                    _order.Enqueue((header.CorrelationId, verdict.Answer));
                }
            }
        }

        forward = verdict.Forward;

        switch (status)
        {
            case TrackStatus.Tracked:
            case TrackStatus.NoResponseExpected:
                RequestCount++;
                var exchange = Exchanges?.OnRequest(request, frameLength, header, expectsResponse);
                _streamed = exchange?.Streamed is not null ? exchange : null;
                if (exchange is not null && _logger.IsEnabled(LogLevel.Debug))
                {
                    Log.Request(_logger, _route.Name, _client.RemoteEndPoint, ExchangeText.Request(exchange));
                }
                else if (Exchanges is null && _logger.IsEnabled(LogLevel.Debug))
                {
                    Log.Request(_logger, _route.Name, _client.RemoteEndPoint, $"{KafkaApis.NameOf(header.ApiKey)} v{header.ApiVersion} #{header.CorrelationId}, {frameLength} bytes");
                }

                if (header.ClientId is { } clientId && _clientId is null)
                {
                    _clientId = clientId;
                }

                if (!verdict.Forward && Exchanges is { } exchanges)
                {
                    if (verdict.Answer is { } answer)
                    {
                        exchanges.OnResponse(header.CorrelationId, new ReadOnlySequence<byte>(answer));
                    }

                    if (exchanges.TryFind(header.CorrelationId, out var injected))
                    {
                        injected.MarkInjected(verdict.Injected ?? "kept from the broker by a fault");
                    }
                }

                // SaslHandshake v0: the SASL tokens that follow are sent as bare size-prefixed
                // blobs with no request header, and answered likewise.
                if (header.ApiKey == KafkaApiKeys.SaslHandshake && header.ApiVersion == 0)
                {
                    _saslTokensFollow = true;
                }

                return null;
            case TrackStatus.Malformed when _saslTokensFollow:
                return null; // a raw SASL token: passes through untouched
            case TrackStatus.Malformed:
                return $"a request header that cannot be parsed ({KafkaRequestHeader.TryParse(request, out _)})";
            case TrackStatus.TooManyInFlight:
                return $"more than {MaxInFlight} requests in flight";
            case TrackStatus.DuplicateCorrelationId:
                return $"correlation id {header.CorrelationId} reused while still in flight";
            default:
                return status.ToString();
        }
    }

    // ---- upstream → client -------------------------------------------------------------------

    private async Task<PumpEnd> ResponsesAsync()
    {
        var input = _upstream.Input;
        while (true)
        {
            var result = await input.ReadAsync().ConfigureAwait(false);
            await _toClient.WaitAsync().ConfigureAwait(false);
            try
            {
                if (await ResponsesReadAsync(result).ConfigureAwait(false) is { } end)
                {
                    return end;
                }
            }
            finally
            {
                _toClient.Release();
            }
        }
    }

    /// <summary>Passes on the responses of one read (holding <see cref="_toClient"/>); the pump's end, or null to read on.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))] // once per read: no allocation when it waits
    private async ValueTask<PumpEnd?> ResponsesReadAsync(ReadResult result)
    {
        var input = _upstream.Input;
        var buffer = result.Buffer;
        if (_passingLength > 0)
        {
            // A large response being cut through: what came of it goes on now; the rest of the
            // buffer is read as usual once it is whole.
            long available = Math.Min(buffer.Length, _passingLength);
            if (available > _passedLength && !await SendAsync(_client, buffer.Slice(_passedLength, available - _passedLength)).ConfigureAwait(false))
            {
                input.AdvanceTo(buffer.End);
                return PumpEnd.DestinationFailed;
            }

            _passedLength = available;
            if (available < _passingLength)
            {
                if (result.IsCompleted && _upstream.ReceiveEnd == ReceiveEnd.Fin)
                {
                    Fail($"the broker closed its side {Truncation(buffer, 0, "response")}");
                    input.AdvanceTo(buffer.End);
                    return PumpEnd.SourceReset;
                }

                input.AdvanceTo(buffer.Start, buffer.End);
                return result.IsCompleted || result.IsCanceled ? Forwarder.End(_upstream, _client) : null;
            }

            Passed(buffer.Slice(0, _passingLength));
            buffer = buffer.Slice(_passingLength);
            _passingLength = 0;
        }

        var pending = buffer; // frames forwarded as they are, sent together
        long pendingLength = 0;
        string? error = null;
        bool passing = false;

        while (error is null)
        {
            var status = KafkaFrameReader.TryReadFrame(ref buffer, _maxFrameSize, out var frame, out var frameError);
            if (status == FrameReadStatus.NeedMoreData)
            {
                passing = TryBeginPassing(buffer);
                break;
            }

            if (status == FrameReadStatus.Error)
            {
                error = $"the broker sent {Describe(frameError, buffer)}";
                break;
            }

            if (AnswerWaiting())
            {
                // Answers made up for requests before this one's go first.
                if ((pendingLength > 0 && !await SendAsync(_client, pending.Slice(0, pendingLength)).ConfigureAwait(false)) ||
                    !await SendAnswersHeldAsync().ConfigureAwait(false))
                {
                    input.AdvanceTo(buffer.End);
                    return PumpEnd.DestinationFailed;
                }

                pending = pending.Slice(pendingLength);
                pendingLength = 0;
            }

            (var rewrite, error) = await RewriteAsync(frame).ConfigureAwait(false);
            if (rewrite == RewriteStatus.Unchanged)
            {
                pendingLength += frame.Length;
                continue;
            }

            if (rewrite == RewriteStatus.Rewritten)
            {
                if ((pendingLength > 0 && !await SendAsync(_client, pending.Slice(0, pendingLength)).ConfigureAwait(false)) ||
                    !await SendAsync(_client, new ReadOnlySequence<byte>(_rewritten.WrittenMemory)).ConfigureAwait(false))
                {
                    input.AdvanceTo(buffer.End);
                    return PumpEnd.DestinationFailed;
                }

                pending = buffer;
                pendingLength = 0;
            }
        }

        if ((pendingLength > 0 && !await SendAsync(_client, pending.Slice(0, pendingLength)).ConfigureAwait(false)) ||
            !await SendAnswersHeldAsync().ConfigureAwait(false))
        {
            input.AdvanceTo(buffer.End);
            return PumpEnd.DestinationFailed;
        }

        if (passing)
        {
            if (!await SendAsync(_client, buffer).ConfigureAwait(false))
            {
                input.AdvanceTo(buffer.End);
                return PumpEnd.DestinationFailed;
            }

            _passedLength = buffer.Length;
        }

        if (error is not null)
        {
            Fail(error);
            input.AdvanceTo(buffer.End);
            return PumpEnd.SourceReset;
        }

        if (result.IsCompleted && _upstream.ReceiveEnd == ReceiveEnd.Fin && !buffer.IsEmpty)
        {
            Fail($"the broker closed its side {Truncation(buffer, 0, "response")}");
            input.AdvanceTo(buffer.End);
            return PumpEnd.SourceReset;
        }

        input.AdvanceTo(buffer.Start, buffer.End);
        if (result.IsCompleted || result.IsCanceled)
        {
            return Forwarder.End(_upstream, _client);
        }

        return null;
    }

    private bool AnswerWaiting()
    {
        lock (_order)
        {
            return _order.Count > 0 && _order.Peek().Answer is not null;
        }
    }

    /// <summary>Sends the answers at the head of <see cref="_order"/>, taking <see cref="_toClient"/>.</summary>
    private async ValueTask<bool> SendAnswersAsync()
    {
        await _toClient.WaitAsync().ConfigureAwait(false);
        try
        {
            return await SendAnswersHeldAsync().ConfigureAwait(false);
        }
        finally
        {
            _toClient.Release();
        }
    }

    /// <summary>Sends the answers at the head of <see cref="_order"/>; the caller holds <see cref="_toClient"/>.</summary>
    private async ValueTask<bool> SendAnswersHeldAsync()
    {
        while (true)
        {
            byte[] answer;
            lock (_order)
            {
                if (_order.Count == 0 || _order.Peek().Answer is not { } next)
                {
                    return true;
                }

                _order.Dequeue();
                answer = next;
            }

            if (!await SendAsync(_client, new ReadOnlySequence<byte>(answer)).ConfigureAwait(false))
            {
                return false;
            }
        }
    }

    /// <summary>Takes the broker's response to <paramref name="correlationId"/> off <see cref="_order"/> (the head, as a broker answers in order).</summary>
    private void Answered(int correlationId)
    {
        lock (_order)
        {
            if (_order.Count > 0 && _order.Peek().CorrelationId == correlationId && _order.Peek().Answer is null)
            {
                _order.Dequeue();
                return;
            }

            var rest = _order.Where(e => e.CorrelationId != correlationId || e.Answer is not null).ToArray();
            _order.Clear();
            foreach (var entry in rest)
            {
                _order.Enqueue(entry);
            }
        }
    }

    /// <summary>
    /// Starts cutting through the incomplete response at the start of <paramref name="buffer"/>
    /// when it is large and goes on as it came anyway: it answers a request no rewrite needs, and
    /// no fault may hold or drop it.
    /// </summary>
    private bool TryBeginPassing(in ReadOnlySequence<byte> buffer)
    {
        // Answers made up for earlier requests go first; this one then waits to be whole.
        if (Faults is { HasKafkaToxics: true } || buffer.Length < KafkaFrameReader.SizePrefixLength + 4 || AnswerWaiting())
        {
            return false;
        }

        long length = KafkaFrameReader.SizePrefixLength + (long)BinaryPrimitives.ReadInt32BigEndian(FirstBytes(buffer));
        if (length <= PassResponsesAbove ||
            !KafkaResponseHeader.TryReadCorrelationId(buffer, out int correlationId) ||
            !_tracker.TryPeek(correlationId, out var request) ||
            request.ApiKey == KafkaApiKeys.ApiVersions ||
            KafkaResponseRewriter.Rewrites(request.ApiKey, request.ApiVersion))
        {
            return false;
        }

        _tracker.TryTake(correlationId, out _);
        _passingLength = length;
        _passingCorrelationId = correlationId;
        return true;
    }

    /// <summary>The response cut through is whole: the conversation records it, from the bytes still in the pipe.</summary>
    private void Passed(in ReadOnlySequence<byte> frame)
    {
        // Only now: until its last byte is sent, an answer made up for a later request must wait behind it.
        Answered(_passingCorrelationId);
        if (Exchanges?.OnResponse(_passingCorrelationId, frame) is { } exchange && _logger.IsEnabled(LogLevel.Debug))
        {
            Log.Response(_logger, _route.Name, _client.RemoteEndPoint, ExchangeText.Response(exchange));
        }
    }

    private async ValueTask<(RewriteStatus Status, string? Error)> RewriteAsync(ReadOnlySequence<byte> frame)
    {
        var (status, error, replaced) = await FaultsThenRewriteAsync(frame).ConfigureAwait(false);
        if (replaced is not null && status == RewriteStatus.Unchanged)
        {
            // Changed by a fault, and not by the rewriter: the fault's frame goes instead.
            _rewritten.ResetWrittenCount();
            _rewritten.Write(replaced);
            return (RewriteStatus.Rewritten, null);
        }

        return (status, error);
    }

    /// <summary>Applies the faults to a response, then rewrites it; the frame a fault put in its place, if any.</summary>
    private async ValueTask<(RewriteStatus Status, string? Error, byte[]? Replaced)> FaultsThenRewriteAsync(ReadOnlySequence<byte> frame)
    {
        if (!KafkaResponseHeader.TryReadCorrelationId(frame, out int correlationId))
        {
            return _saslTokensFollow ? (RewriteStatus.Unchanged, null, null) : (RewriteStatus.Malformed, "a response too short to carry a correlation id", null);
        }

        if (!_tracker.TryTake(correlationId, out var request))
        {
            // Not a response to a tracked request: a raw SASL token reply after SaslHandshake v0.
            return _saslTokensFollow
                ? (RewriteStatus.Unchanged, null, null)
                : (RewriteStatus.Malformed, $"a response with correlation id {correlationId}, which answers no request in flight", null);
        }

        Answered(correlationId);
        var verdict = Faults is { } faults
            ? await faults.OnResponseAsync(correlationId, request, frame, CancellationToken.None).ConfigureAwait(false)
            : ResponseVerdict.Passed;
        var replaced = verdict.Replacement;
        if (replaced is not null)
        {
            frame = new ReadOnlySequence<byte>(replaced);
        }

        // Recorded as the client gets it (a fault's error or delay included).
        if (Exchanges?.OnResponse(correlationId, frame) is { } exchange && _logger.IsEnabled(LogLevel.Debug))
        {
            Log.Response(_logger, _route.Name, _client.RemoteEndPoint, ExchangeText.Response(exchange));
        }

        if (verdict.Injected is { } injected && Exchanges is { } exchanges && exchanges.TryFind(correlationId, out var marked))
        {
            marked.MarkInjected(injected);
        }

        if (!verdict.Pass)
        {
            // Swallowed by a toxic: sent as an empty rewrite, so nothing of it reaches the client.
            _rewritten.ResetWrittenCount();
            return (RewriteStatus.Rewritten, null, null);
        }

        if (request.ApiKey != KafkaApiKeys.ApiVersions && !KafkaResponseRewriter.Rewrites(request.ApiKey, request.ApiVersion))
        {
            return (RewriteStatus.Unchanged, null, replaced);
        }

        var (result, error) = RewriteOnce(frame, request);
        if (error is null && result.Status != RewriteStatus.Malformed && _mapper is IReconcilingBrokerMapper { HasPending: true } reconciling)
        {
            // The response names brokers no listener serves yet: open theirs, then write it again
            // with their ports. The frame stays in the pipe's buffer until it is sent.
            if (await reconciling.ReconcileAsync(CancellationToken.None).ConfigureAwait(false) is { } problem)
            {
                return (RewriteStatus.Malformed, $"a broker address the proxy cannot serve: {problem}", null);
            }

            (result, error) = RewriteOnce(frame, request);
            if (error is null && reconciling.HasPending)
            {
                return (RewriteStatus.Malformed, "broker addresses that changed again while their listeners were opened; closed rather than pass on unrewritten ones", null);
            }
        }

        if (error is not null)
        {
            return (RewriteStatus.Malformed, error, null);
        }

        foreach (var conflict in result.Conflicts)
        {
            if (s_reportedConflicts.TryAdd((_route.Root.Name, conflict), 0))
            {
                Log.ApiVersionConflict(_logger, _route.Root.Name, KafkaApis.NameOf(conflict.ApiKey), conflict.ApiKey, conflict.MinVersion, conflict.Cap);
            }
        }

        return result.Status == RewriteStatus.Malformed
            ? (RewriteStatus.Malformed, $"a {KafkaApis.NameOf(request.ApiKey)} v{request.ApiVersion} response the proxy cannot parse ({result.Reason}); closed rather than pass on unrewritten broker addresses", null)
            : (result.Status, null, replaced);
    }

    /// <summary>One pass of the rewriter over <paramref name="frame"/>; the new frame, if any, is in <see cref="_rewritten"/>.</summary>
    private (RewriteResult Result, string? Error) RewriteOnce(in ReadOnlySequence<byte> frame, InFlightRequest request)
    {
        _rewritten.ResetWrittenCount();
        try
        {
            return (KafkaResponseRewriter.TryRewrite(frame, request.ApiKey, request.ApiVersion, _mapper, _rewritten), null);
        }
        catch (InvalidOperationException e)
        {
            // A mapper refuses a broker it cannot serve this way (see IBrokerAddressMapper).
            return (RewriteResult.Malformed(MalformedReason.None), $"a broker address the proxy cannot serve: {e.Message}");
        }
    }

    // ---- helpers -----------------------------------------------------------------------------

    private static async ValueTask<bool> SendAsync(PipeSocket to, ReadOnlySequence<byte> bytes) =>
        await to.SendAsync(bytes, CancellationToken.None).ConfigureAwait(false) == SocketError.Success;

    private void Fail(string error)
    {
        ProtocolError = error;
        Log.ProtocolError(_logger, _route.Name, _client.RemoteEndPoint, _clientId ?? "-", error);
        _client.Abort();
        _upstream.Abort();
    }

    private string Describe(FrameError error, in ReadOnlySequence<byte> buffer) => error switch
    {
        FrameError.LooksLikeTls => "TLS bytes (0x16 0x03...) to a plaintext Kafka listener; configure the client for PLAINTEXT or SASL_PLAINTEXT, or put TLS in front of the proxy",
        FrameError.TooLarge => $"a frame of {BinaryPrimitives.ReadInt32BigEndian(FirstBytes(buffer))} bytes, over MaxFrameSize {_maxFrameSize}",
        FrameError.NegativeSize => $"a negative frame size ({BinaryPrimitives.ReadInt32BigEndian(FirstBytes(buffer))})",
        _ => error.ToString(),
    };

    /// <summary>Where in a frame the peer's FIN came: "in the middle of a 120-byte request (24 bytes sent)".</summary>
    private static string Truncation(in ReadOnlySequence<byte> buffer, long streamingLeft, string what)
    {
        if (streamingLeft > 0)
        {
            return $"in the middle of a {what} ({streamingLeft} bytes of it never came)";
        }

        if (buffer.Length < KafkaFrameReader.SizePrefixLength)
        {
            return $"in the middle of a {what}'s size prefix ({buffer.Length} of {KafkaFrameReader.SizePrefixLength} bytes)";
        }

        long total = KafkaFrameReader.SizePrefixLength + (long)BinaryPrimitives.ReadInt32BigEndian(FirstBytes(buffer));
        return $"in the middle of a {total}-byte {what} ({buffer.Length} bytes sent)";
    }

    private static ReadOnlySpan<byte> FirstBytes(in ReadOnlySequence<byte> buffer)
    {
        var first = buffer.FirstSpan;
        if (first.Length >= 4)
        {
            return first[..4];
        }

        var copy = new byte[4];
        buffer.Slice(0, 4).CopyTo(copy);
        return copy;
    }

    private static partial class Log
    {
        [LoggerMessage(500, LogLevel.Warning, "{Route}: {Client} (client.id {ClientId}) closed: {Error}")]
        public static partial void ProtocolError(ILogger logger, string route, IPEndPoint client, string clientId, string error);

        // Debug: only a client that uses the API is affected, and its close is logged as a warning with the reason.
        [LoggerMessage(501, LogLevel.Debug, "{Route}: the brokers offer {Api} (api key {ApiKey}) from version {Min} only, and the proxy rewrites it up to version {Cap}; a client that uses it through this route is disconnected rather than given the brokers' own addresses (said once per route)")]
        public static partial void ApiVersionConflict(ILogger logger, string route, string api, short apiKey, short min, short cap);

        [LoggerMessage(502, LogLevel.Debug, "{Route}: {Client} → {Request}")]
        public static partial void Request(ILogger logger, string route, IPEndPoint client, string request);

        [LoggerMessage(503, LogLevel.Debug, "{Route}: {Client} ← {Response}")]
        public static partial void Response(ILogger logger, string route, IPEndPoint client, string response);
    }
}
