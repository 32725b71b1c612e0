using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using Microsoft.Extensions.Logging;
using Relayd.Delivery;
using Relayd.Diagnostics;
using Relayd.Internal;
using Relayd.Media;
using Relayd.Protocol.V1;
using Relayd.Routing;
using Relayd.Storage;

namespace Relayd.Transport;

/// <summary>
/// One authenticated partner connection. The reader (<c>.Reader.cs</c>) turns frames from the TLS stream into
/// routed envelopes, acks and receipts; the writer (<c>.Writer.cs</c>) sends replies and deliveries.
/// </summary>
/// <remarks>
/// Data path of one envelope, and its one copy: TLS stream → input <see cref="PipeReader"/> (decrypted into pooled
/// pipe buffers) → header read in place → <see cref="ShardQueue.TryAppend"/> copies the frame into the write-ahead
/// log's buffer and the envelope bytes into a pooled slab of the recipient's shard → the log writer makes it durable
/// and the session's writer sends the Ack (<see cref="PendingAcks"/>) → the recipient's writer hands the slab memory
/// to its TLS stream, which encrypts from it.
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "RunAsync owns the session's lifetime and disposes everything when it ends.")]
internal sealed partial class PartnerSession : IDeliveryConsumer, IDurabilityListener, IReceiptSink
{
    private readonly SessionServices _services;
    private readonly SslStream _stream;
    private readonly StallWatchStream _transport;
    private readonly PartialFrameWatch _partialFrame;
    private readonly PipeReader _input;
    private readonly Pipe _control;
    private bool _registered; // in the services' sessions since its Welcome (set by the read side only)
    private readonly AsyncSignal _writerSignal = new();
    private readonly CancellationTokenSource _abort = new();
    private readonly ILogger _logger;

    private long _lastInputTicks = Environment.TickCount64;
    private int _pingOutstanding;
    private int _closeCode;   // an ErrorCode, set once: GoAway / fatal error the writer must send before closing
    private string _closeDetail = "";
    private volatile bool _closeWithGoAway; // GoAway (the partner finishes and closes) rather than a fatal Error
    private int _closeRequested;
    private int _writeStalled;
    private string? _abortReason;

    public PartnerSession(SessionServices services, long connectionId, SslStream stream, StallWatchStream transport, PartnerInfo partner, EndPoint? remote)
    {
        _services = services;
        _stream = stream;
        _transport = transport;
        _partialFrame = new PartialFrameWatch(services.Limits, services.PartialFramesOf(partner), partner.Id);
        _logger = services.Logger;
        _download = new MediaDownloadCursor(services.Media, this);
        ConnectionId = connectionId;
        ConnectedAt = services.Clock.GetUtcNow();
        Partner = partner;
        Remote = remote;
        RelayLimits limits = services.Limits;
        _input = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: limits.InputBufferBytes, minimumReadSize: 4096, leaveOpen: true));

        // Only this session's reader writes replies into the control pipe; when the partner stops reading them the
        // pipe pauses and the reader stops reading the partner's socket: that is the backpressure on senders.
        _control = new Pipe(new PipeOptions(
            pauseWriterThreshold: limits.ControlPauseBytes,
            resumeWriterThreshold: limits.ControlPauseBytes / 2,
            minimumSegmentSize: 16 * 1024, // one TLS record: a segment's replies go out in one write
            useSynchronizationContext: false));
    }

    public long ConnectionId { get; }

    public PartnerInfo Partner { get; }

    public EndPoint? Remote { get; }

    public string Agent { get; private set; } = "";

    /// <summary>When the connection was accepted (TLS and Hello came after).</summary>
    public DateTimeOffset ConnectedAt { get; }

    /// <summary>Bytes read from the partner's socket so far.</summary>
    public long BytesReceived => _transport.BytesReceived;

    /// <summary>Bytes written to the partner's socket so far.</summary>
    public long BytesSent => _transport.BytesSent;

    /// <summary>Envelopes accepted from the partner whose Ack waits for the log's commit.</summary>
    public int PendingAcks => _acks.Count;

    /// <summary>Deliveries sent on this session and not yet acknowledged (a lock per shard: for operators, not the data path).</summary>
    public int DeliveriesInFlight
    {
        get
        {
            int inFlight = 0;
            foreach (ShardQueue shard in Partner.Mailbox.Shards)
            {
                inFlight += shard.InFlightFor(this);
            }

            return inFlight;
        }
    }

    /// <summary>Runs the session until either side closes; never throws.</summary>
    public async Task RunAsync(CancellationToken helloDeadline)
    {
        string reason = "closed by peer";
        Task writer = Task.CompletedTask;
        bool reserved = false;
        bool attached = false;
        try
        {
            // The writer starts first so that refusals before Welcome still reach the partner.
            writer = WriteLoopAsync();
            reserved = Partner.Mailbox.TryReserveConnection(Partner.MaxConnections);
            if (!reserved)
            {
                reason = "connection limit";
                Refuse(ErrorCode.ConnectionLimit, $"partner '{Partner.Id}' already holds {Partner.MaxConnections} connections");
                await FlushControlAsync();
                return;
            }

            if (await ReceiveHelloAsync(helloDeadline) is { } refused)
            {
                reason = refused;
                return;
            }

            // Before Attach: the session's first delivery or receipt is reported after it opened.
            _services.Support.SessionOpened(Partner, ConnectionId, _services.Clock.GetUtcNow().ToUnixTimeMilliseconds());
            Partner.Mailbox.Attach(this);
            attached = true;
            _services.Metrics.SessionsActive.Add(1, Partner.MetricTag);
            _services.Media.Attach(this);
            _services.Receipts.HandOverHeld(Partner, this); // what was held while the partner was away comes first
            // Registered with the Welcome (ReceiveHelloAsync). A stop that began before the registration sent its
            // GoAways without this session (seen in CI: "GoAway sent to 0 sessions", the partner never told). The
            // barrier orders the registration before the flag's read, as the stop sets the flag before it reads the
            // sessions.
            Interlocked.MemoryBarrier();
            if (_services.IsShuttingDown)
            {
                RequestClose(ErrorCode.ShuttingDown, "the relay is shutting down");
            }

            HandOverInteropHeld();
            RelayLog.SessionOpened(_logger, ConnectionId, Partner.Id, Remote, Agent);
            reason = await ReadLoopAsync();
        }
        catch (OperationCanceledException)
        {
            reason = _abortReason ?? (_closeCode == 0 ? "aborted" : Protocol.ProtoNames.Of((ErrorCode)_closeCode));
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            reason = "connection lost: " + ex.Message;
        }
        finally
        {
            _partialFrame.Release();
            if (attached)
            {
                Partner.Mailbox.Detach(this);
                _services.Metrics.SessionsActive.Add(-1, Partner.MetricTag);
            }

            // After the detach: once a session is no longer listed, it neither takes deliveries nor narrows what its
            // partner accepts (the declared kinds are recomputed on detach).
            if (_registered)
            {
                _services.Unregister(this);
            }

            if (reserved)
            {
                Partner.Mailbox.ReleaseConnection();
            }

            await CloseAsync(writer);
            ReturnUnsentReceipts(); // detached already: the dispatcher cannot pick this session again
            if (attached)
            {
                ReleaseMedia();
            }

            RelayLog.SessionClosed(_logger, ConnectionId, Partner.Id, reason);
            if (attached && !_services.Support.IsEmpty)
            {
                string word = Routing.SupportEventReports.CloseWord((ErrorCode)Volatile.Read(ref _closeCode), Volatile.Read(ref _writeStalled) != 0, reason);
                _services.Support.SessionClosed(Partner, ConnectionId, word, _services.Clock.GetUtcNow().ToUnixTimeMilliseconds());
            }
        }
    }

    /// <summary>Closes the session after sending GoAway (shutdown) or a fatal Error (idle timeout).</summary>
    public void RequestClose(ErrorCode code, string detail) => RequestClose(code, detail, goAway: code == ErrorCode.ShuttingDown);

    /// <summary>
    /// Sends GoAway with <paramref name="code"/> (no new work on this connection: the partner finishes what is in
    /// flight and closes), e.g. for a partner a reload removed.
    /// </summary>
    public void RequestGoAway(ErrorCode code, string detail) => RequestClose(code, detail, goAway: true);

    private void RequestClose(ErrorCode code, string detail, bool goAway)
    {
        if (Interlocked.CompareExchange(ref _closeRequested, 1, 0) == 0)
        {
            _closeDetail = detail;
            _closeWithGoAway = goAway;
            Volatile.Write(ref _closeCode, (int)code);
            _writerSignal.Set();
        }
    }

    /// <summary>Called by the listener's heartbeat: pings an idle partner, closes a silent one.</summary>
    public void CheckIdle(long nowTicks, TimeSpan idleTimeout)
    {
        long idleMs = nowTicks - Volatile.Read(ref _lastInputTicks);
        if (idleMs > 2 * idleTimeout.TotalMilliseconds)
        {
            if (Volatile.Read(ref _closeRequested) == 0)
            {
                RelayLog.IdleClosed(_logger, ConnectionId, Partner.Id); // once, not at every heartbeat
            }

            RequestClose(ErrorCode.IdleTimeout, $"no frame for {idleMs} ms");
        }
        else if (idleMs > idleTimeout.TotalMilliseconds && Interlocked.CompareExchange(ref _pingOutstanding, 1, 0) == 0)
        {
            _writerSignal.Set();
        }
    }

    /// <summary>
    /// Called by the listener's heartbeat: aborts the session when a write has made no progress for
    /// <see cref="RelayLimits.WriteTimeout"/> (the partner stopped reading).
    /// </summary>
    public void CheckProgress(long nowTicks)
    {
        long pendingMs = _transport.PendingWriteMs(nowTicks);
        if (pendingMs > _services.Limits.WriteTimeout.TotalMilliseconds && Interlocked.Exchange(ref _writeStalled, 1) == 0)
        {
            RelayLog.WriteStalled(_logger, ConnectionId, Partner.Id, pendingMs);
            _abortReason = $"a write made no progress for {pendingMs} ms";

            // Its shards go to the partner's other sessions now, with what it was sent but did not acknowledge.
            Partner.Mailbox.Detach(this);
            Abort();
            return;
        }

        // A partial frame's data rate is checked by the reader each time bytes arrive; a partner that sends nothing at
        // all mid-frame is closed by the idle timeout. The heartbeat does not wake the reader for it: cancelling a pending
        // read would also cancel the TLS read under it, on every busy connection, every second.
    }

    public void Abort()
    {
        try
        {
            _abort.Cancel(); // cancels the pending socket write too
        }
        catch (ObjectDisposedException)
        {
            // Already closed.
        }
    }

    void IDeliveryConsumer.OnDeliveriesAvailable() => _writerSignal.Set();

    IReceiptSink IDeliveryConsumer.ReceiptSink => this;

    long IReceiptSink.ConnectionId => ConnectionId;

    private async Task CloseAsync(Task writer)
    {
        await _control.Writer.CompleteAsync();
        _writerSignal.Set();
        Task finished = await Task.WhenAny(writer, Task.Delay(_services.Limits.ShutdownTimeout));
        if (finished != writer)
        {
            await _abort.CancelAsync();
        }

        try
        {
            await writer;
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
        {
            RelayLog.WriteFailed(_logger, ConnectionId, ex);
        }

        await _input.CompleteAsync();
        try
        {
            TimeSpan closeNotifyTimeout = TimeSpan.FromSeconds(1); // a courtesy close_notify; the socket closes either way
            using var shutdownDeadline = new CancellationTokenSource(closeNotifyTimeout);
            await _stream.ShutdownAsync().WaitAsync(shutdownDeadline.Token);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            // The peer may already be gone; closing the socket below is all that is left to do.
        }

        await _stream.DisposeAsync();
        _abort.Dispose();
    }
}
