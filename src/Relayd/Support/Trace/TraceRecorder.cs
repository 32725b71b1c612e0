using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Relayd.Protocol.V1;
using Relayd.Routing;
using Relayd.Storage;

namespace Relayd.Support.Trace;

/// <summary>
/// Per-message trace (docs/operations.md, "Trace"): the <see cref="ISupportEvents"/> consumer that copies each event
/// of each message into a fixed-size <see cref="TraceEntry"/> in a lock-free ring (nothing allocated, no lock, no
/// system call on the data path; a full ring drops and counts), which <see cref="TraceSegmentWriter"/> writes to
/// segment files under <c>&lt;wal.dir&gt;/trace</c> in batches. User ids are kept only as keyed hashes
/// (<see cref="UserHasher"/>); ciphertext never. A resend's RECEIVED is not written apart from its ACCEPTED: the
/// accepted record carries the session and size, and the reply derives RECEIVED from it.
/// </summary>
internal sealed class TraceRecorder : ISupportEvents, IRecoveredEnvelopes, IDisposable
{
    public const string DirectoryName = "trace";

    // Events this close to the newest one on disk may have been lost with the last process (the ring's unwritten
    // tail and the writer's last batch): recovered envelopes accepted since then get their ACCEPTED and DURABLE
    // re-derived from the log.
    private const long DeriveMarginMs = 2000;

    private readonly TraceRing _ring;
    private readonly TraceSegmentWriter _writer;
    private readonly UserHasher _users;
    private readonly TraceCounters _counters;
    private readonly TimeProvider _clock;
    private readonly ConcurrentDictionary<string, PartnerPresence> _presence = new(StringComparer.Ordinal);
    private readonly long _newestOnDiskMs;
    private readonly ILogger _logger;
    private int _derived;

    private TraceRecorder(string directory, TraceOptions options, TimeProvider clock, ILogger logger, List<TraceSegment> closed, long newestOnDiskMs, bool startWriter)
    {
        Directory = directory;
        _clock = clock;
        _logger = logger;
        _newestOnDiskMs = newestOnDiskMs;
        _users = UserHasher.Open(directory);
        _counters = new TraceCounters();
        _ring = new TraceRing(options.RingEvents);
        StartedAtMs = clock.GetUtcNow().ToUnixTimeMilliseconds();
        _writer = new TraceSegmentWriter(directory, options, _ring, clock, logger, _counters, closed, StartedAtMs);
        if (startWriter)
        {
            _writer.Start();
        }
    }

    public string Directory { get; }

    /// <summary>When this relay process began recording (the answer to "no session since" for a partner never seen).</summary>
    public long StartedAtMs { get; }

    public TraceCounters Counters => _counters;

    /// <summary>One partner TraceRequest scan at a time for the whole relay: a partner cannot keep the disk and CPU busy.</summary>
    public SemaphoreSlim PartnerScans { get; } = new(1, 1);

    public UserHasher Users => _users;

    /// <summary>Bytes of the segment files now.</summary>
    public long Bytes => _writer.Bytes;

    /// <summary>
    /// Opens the trace in <c>&lt;walDirectory&gt;/trace</c>: creates it, closes (renames) a segment the last process
    /// left open, and starts the writer.
    /// </summary>
    /// <exception cref="IOException">The directory or the user-hash key cannot be made or read.</exception>
    public static TraceRecorder Open(TraceOptions options, string walDirectory, TimeProvider clock, ILogger logger) =>
        Open(options, walDirectory, clock, logger, startWriter: true);

    /// <summary>As <see cref="Open(TraceOptions, string, TimeProvider, ILogger)"/>; without the writer thread (benchmarks: <see cref="DrainNow"/> writes).</summary>
    internal static TraceRecorder Open(TraceOptions options, string walDirectory, TimeProvider clock, ILogger logger, bool startWriter)
    {
        string directory = Path.Combine(walDirectory, DirectoryName);
        if (OperatingSystem.IsWindows())
        {
            System.IO.Directory.CreateDirectory(directory);
        }
        else
        {
            System.IO.Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
        }
        var closed = new List<TraceSegment>();
        long newest = long.MinValue;
        foreach (TraceSegment segment in TraceSegment.List(directory))
        {
            TraceSegment kept = segment.IsOpen ? CloseLeftOpen(segment) : segment;
            if (kept.Events > 0)
            {
                closed.Add(kept);
                newest = Math.Max(newest, kept.LastMs);
            }
        }

        var recorder = new TraceRecorder(directory, options, clock, logger, closed, newest, startWriter);
        return recorder;
    }

    /// <summary>Observes the metrics on the relay's meter (after <see cref="Open"/>).</summary>
    public void ObserveMetrics(System.Diagnostics.Metrics.Meter meter) => _counters.Observe(meter, () => Bytes);

    /// <summary>Logs what was opened and derived, once recovery has run.</summary>
    public void LogOpened() => TraceLog.TraceOpened(_logger, Directory, TraceSegment.List(Directory).Count, Bytes, _derived);

    // A segment a crash left open: read it for its times and count, and rename it closed (the torn tail stays unread).
    private static TraceSegment CloseLeftOpen(TraceSegment segment)
    {
        long first = long.MaxValue, last = long.MinValue, events = 0;
        TraceSegmentReader.Read(segment.Path, static (_, _) => true, record =>
        {
            first = Math.Min(first, record.AtMs);
            last = Math.Max(last, record.AtMs);
            events++;
        });
        if (events == 0)
        {
            File.Delete(segment.Path);
            return segment with { Events = 0 };
        }

        string closedPath = Path.Combine(Path.GetDirectoryName(segment.Path)!, TraceSegment.ClosedName(segment.Sequence, first, last, events));
        File.Move(segment.Path, closedPath);
        return new TraceSegment(closedPath, segment.Sequence, first, last, events, segment.Bytes, IsOpen: false);
    }

    /// <summary>Completes once every event reported before the call is in the segment files (readable, not synced).</summary>
    public Task FlushAsync() => _writer.FlushAsync();

    /// <summary>Benchmarks (opened without the writer thread): writes what the ring holds on the caller's thread.</summary>
    internal void DrainNow() => _writer.DrainNow();

    /// <summary>The partner's sessions as the trace saw them: open now, and when the last one closed (0: never, since <see cref="StartedAtMs"/>).</summary>
    public (int Open, long LastClosedMs) Presence(string partner) =>
        _presence.TryGetValue(partner, out PartnerPresence? p) ? (Volatile.Read(ref p.Open), Interlocked.Read(ref p.LastClosedMs)) : (0, 0);

    public void Dispose() => _writer.Dispose();

    private void Add(in TraceEntry entry)
    {
        if (!_ring.TryAdd(entry))
        {
            _counters.Dropped(1);
        }
    }

    public void SessionOpened(PartnerInfo partner, long connectionId, long nowMs) =>
        Interlocked.Increment(ref _presence.GetOrAdd(partner.Id, static _ => new PartnerPresence()).Open);

    public void SessionClosed(PartnerInfo partner, long connectionId, string reason, long nowMs)
    {
        PartnerPresence presence = _presence.GetOrAdd(partner.Id, static _ => new PartnerPresence());
        Interlocked.Exchange(ref presence.LastClosedMs, nowMs);
        Interlocked.Decrement(ref presence.Open);
    }

    public void EnvelopeRefused(PartnerInfo sender, long connectionId, in ReadOnlySequence<byte> messageId, int frameBytes, ErrorCode code, string detail, long nowMs)
    {
        Span<byte> id = stackalloc byte[16];
        bool findable = messageId.Length == 16;
        if (findable)
        {
            messageId.CopyTo(id);
        }

        Add(new TraceEntry
        {
            Kind = TraceEventKind.TraceRefused,
            Flags = findable ? TraceFlags.None : TraceFlags.NoId,
            AtMs = nowMs,
            Id = findable ? BinaryPrimitives.ReadUInt128BigEndian(id) : 0,
            Sender = sender,
            Session = connectionId,
            Bytes = frameBytes,
            Code = code,
            Detail = detail,
        });
    }

    public void EnvelopeAccepted(in AcceptedEnvelope envelope) => Add(new TraceEntry
    {
        Kind = TraceEventKind.TraceAccepted,
        Flags = envelope.LogOnly ? TraceFlags.LogOnly : TraceFlags.None,
        AtMs = envelope.AcceptedAtMs,
        Id = envelope.MessageId,
        Sender = envelope.Sender,
        Recipient = envelope.Recipient,
        Session = envelope.ConnectionId,
        Bytes = envelope.FrameBytes,
        Shard = (ushort)envelope.Shard,
        Number = envelope.DurableAt.Value, // kept for the query, which finds the session's DURABLE by it
        SenderUserHash = _users.Hash(envelope.SenderUser),
        RecipientUserHash = _users.Hash(envelope.RecipientUser),
    });

    public void EnvelopeDuplicate(PartnerInfo sender, long connectionId, UInt128 messageId, long nowMs) =>
        Add(new TraceEntry { Kind = TraceEventKind.TraceDuplicate, AtMs = nowMs, Id = messageId, Sender = sender, Session = connectionId });

    // One record per batch of Acks (TraceFlags.Group): the query gives each envelope of the session whose ACCEPTED
    // mark lies in [first, through] its DURABLE step (TraceQuery.DurableOf).
    public void EnvelopesDurable(PartnerInfo sender, long connectionId, DurableMark first, DurableMark through, int envelopes, long nowMs) => Add(new TraceEntry
    {
        Kind = TraceEventKind.TraceDurable, Flags = TraceFlags.Group, AtMs = nowMs, Sender = sender, Session = connectionId,
        From = first.Value, Number = through.Value, Bytes = envelopes,
    });

    public void EnvelopeDelivered(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long connectionId, ulong deliveryId, long nowMs) =>
        Add(new TraceEntry { Kind = TraceEventKind.TraceDelivered, AtMs = nowMs, Id = messageId, Sender = sender, Recipient = recipient, Session = connectionId, Number = deliveryId });

    public void EnvelopeAcknowledged(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long connectionId, ulong deliveryId, long acceptedAtMs, long firstSentAtMs, long nowMs) =>
        Add(new TraceEntry { Kind = TraceEventKind.TraceAcknowledged, AtMs = nowMs, Id = messageId, Sender = sender, Recipient = recipient, Session = connectionId, Number = deliveryId });

    public void ReceiptProduced(PartnerInfo sender, UInt128 messageId, ReceiptStatus status, ErrorCode code, long connectionId, long nowMs) =>
        Add(new TraceEntry { Kind = TraceEventKind.TraceReceipt, AtMs = nowMs, Id = messageId, Sender = sender, Session = connectionId, Status = status, Code = code });

    public void EnvelopeExpired(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long nowMs) =>
        Add(new TraceEntry { Kind = TraceEventKind.TraceExpired, AtMs = nowMs, Id = messageId, Sender = sender, Recipient = recipient });

    // The sender's REFUSED receipt step (ReceiptProduced) already records this outcome, with its code and time.
    public void EnvelopeRefusedQueued(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, ErrorCode code, long nowMs)
    {
    }

    public void EnvelopePurged(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long nowMs) =>
        Add(new TraceEntry { Kind = TraceEventKind.TracePurged, AtMs = nowMs, Id = messageId, Sender = sender, Recipient = recipient });

    public void MediaEvent(in MediaEventInfo media) => Add(new TraceEntry
    {
        Kind = media.Kind switch
        {
            MediaEventKind.Opened => TraceEventKind.TraceMediaOpened,
            MediaEventKind.Progress => TraceEventKind.TraceMediaProgress,
            MediaEventKind.Complete => TraceEventKind.TraceMediaComplete,
            MediaEventKind.Delivered => TraceEventKind.TraceMediaDelivered,
            MediaEventKind.Received => TraceEventKind.TraceMediaReceived,
            _ => TraceEventKind.TraceMediaFailed,
        },
        AtMs = media.NowMs,
        Id = media.TransferId,
        Sender = media.Sender,
        Recipient = media.Recipient,
        Session = media.ConnectionId,
        Bytes = media.Bytes,
        TotalBytes = media.TotalBytes,
        Code = media.Code,
        Detail = media.Detail,
    });

    public void KeyBundleEvent(PartnerInfo requester, PartnerInfo? target, ulong requestId, KeyBundleEventKind kind, ErrorCode status, long nowMs) => Add(new TraceEntry
    {
        Kind = kind switch
        {
            KeyBundleEventKind.Forwarded => TraceEventKind.TraceKeyBundleForwarded,
            KeyBundleEventKind.Answered => TraceEventKind.TraceKeyBundleAnswered,
            _ => TraceEventKind.TraceKeyBundleTimedOut,
        },
        AtMs = nowMs,
        Sender = requester,
        Recipient = target,
        Number = requestId,
        Code = status,
    });

    public void AbuseReported(PartnerInfo reporter, PartnerInfo? reported, in ReadOnlySequence<byte> reportId, UInt128 messageId, long nowMs)
    {
        // The report id is 16 bytes (AbuseReportCheck): kept in the user-hash slots, which an abuse record has no use for.
        Span<byte> id = stackalloc byte[16];
        id.Clear();
        reportId.Slice(0, Math.Min(reportId.Length, 16)).CopyTo(id);
        UInt128 report = BinaryPrimitives.ReadUInt128BigEndian(id);
        Add(new TraceEntry
        {
            Kind = TraceEventKind.TraceAbuseReported, AtMs = nowMs, Id = messageId, Sender = reporter, Recipient = reported,
            SenderUserHash = (ulong)(report >> 64), RecipientUserHash = (ulong)report,
        });
    }

    /// <summary>
    /// Recovery (before serving): an envelope the log still holds. When it was accepted after the newest event the
    /// trace had on disk (less a margin), its ACCEPTED and DURABLE were probably lost with the process (SIGKILL, power
    /// loss): they are derived from the log's record, marked "from log" (a query drops them where the originals
    /// survived). DURABLE carries the accepted time: the log does not record when its fdatasync ended.
    /// </summary>
    public void Recovered(in RecoveredEnvelope envelope)
    {
        (PartnerInfo? sender, UInt128 messageId, PartnerInfo? recipient, long acceptedAtMs) = (envelope.Sender, envelope.MessageId, envelope.Recipient, envelope.AcceptedAtMs);
        if (sender is null || (_newestOnDiskMs != long.MinValue && acceptedAtMs < _newestOnDiskMs - DeriveMarginMs))
        {
            return;
        }

        _derived++;
        AddWaiting(new TraceEntry
        {
            Kind = TraceEventKind.TraceAccepted, Flags = TraceFlags.FromLog, AtMs = acceptedAtMs, Id = messageId, Sender = sender, Recipient = recipient, Shard = (ushort)envelope.Shard,
            Bytes = envelope.FrameBytes, SenderUserHash = _users.Hash(envelope.SenderUser), RecipientUserHash = _users.Hash(envelope.RecipientUser),
        });
        AddWaiting(new TraceEntry { Kind = TraceEventKind.TraceDurable, Flags = TraceFlags.FromLog, AtMs = acceptedAtMs, Id = messageId, Sender = sender });
    }

    // Recovery runs before the relay serves: it waits for the writer rather than drop.
    private void AddWaiting(in TraceEntry entry)
    {
        var spin = default(SpinWait);
        while (!_ring.TryAdd(entry))
        {
            spin.SpinOnce();
        }
    }

    private sealed class PartnerPresence
    {
        public int Open;
        public long LastClosedMs;
    }
}
