using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;
using Relayd.Protocol.V1;
using Relayd.Routing;
using Relayd.Storage;

namespace Relayd.Interop.Abuse;

/// <summary>
/// Abuse reports (docs/protocol.md, "Abuse reports"): checks each reported message id against what the relay carried,
/// keeps the report durably (the interop log), acknowledges it once durable, and forwards an AbuseNotice to the
/// reported partner store-and-forward: to a live session now, again to every session that attaches, until the
/// partner acknowledges it, across restarts.
/// </summary>
/// <remarks>
/// Idempotent on (reporter partner, report_id): a resend gets the first report's ack (whatever it carries). Reports
/// stay in the log for the admin; in memory the relay keeps a summary of each (about 150 bytes) and the full notice
/// only until the reported partner has it. Reports are rare (a user presses a button), so one lock serves them all.
/// </remarks>
internal sealed class AbuseReportStore
{
    private readonly Lock _lock = new();
    private readonly IInteropRecords _log;
    private readonly TimeProvider _clock;
    private readonly ILogger _logger;
    private readonly Dictionary<(string Partner, UInt128 ReportId), Task<AbuseReportAck>> _byReportId = [];
    private readonly Dictionary<string, SortedDictionary<ulong, AbuseNotice>> _pendingByPartner = new(StringComparer.Ordinal);
    private readonly Dictionary<ulong, AbuseReportSummary> _summaries = [];
    private readonly List<AbuseReportSummary> _inOrder = [];
    private ulong _lastNoticeId;

    public AbuseReportStore(IInteropRecords log, TimeProvider clock, ILogger logger)
    {
        _log = log;
        _clock = clock;
        _logger = logger;
    }

    /// <summary>
    /// Sends a frame to a live session of a partner; false when it has none (or its outbox is full). Set by the
    /// composition root; until then everything is held.
    /// </summary>
    public Func<PartnerInfo, Frame, bool> SendLive { get; set; } = static (_, _) => false;

    /// <summary>Where each newly accepted report is reported (set by the composition root once the consumers exist).</summary>
    public Routing.SupportEvents Support { get; set; } = Relayd.Routing.SupportEvents.None;

    /// <summary>
    /// A report was accepted (durable) against (reported partner, reported user): the hook a rate limit that tightens
    /// for reported senders subscribes to. Raised once per report, not for a resend; on the durability thread.
    /// </summary>
    public event Action<PartnerInfo, ReadOnlyMemory<byte>>? ReportAccepted;

    /// <summary>Reports accepted against a user of <paramref name="reportedPartner"/> within <paramref name="window"/> of now.</summary>
    public int ReportsAgainst(string reportedPartner, ReadOnlySpan<byte> reportedUser, TimeSpan window)
    {
        ulong user = CarriedTo.UserHash(reportedUser);
        long since = _clock.GetUtcNow().ToUnixTimeMilliseconds() - (long)window.TotalMilliseconds;
        int count = 0;
        lock (_lock)
        {
            for (int i = _inOrder.Count - 1; i >= 0 && _inOrder[i].AcceptedAtMs >= since; i--)
            {
                if (_inOrder[i].ReportedUserHash == user && _inOrder[i].ReportedPartner == reportedPartner)
                {
                    count++;
                }
            }
        }

        return count;
    }

    /// <summary>The most recent reports, newest first.</summary>
    public List<AbuseReportSummary> Recent(int limit)
    {
        lock (_lock)
        {
            var recent = new List<AbuseReportSummary>(Math.Min(limit, _inOrder.Count));
            for (int i = _inOrder.Count - 1; i >= 0 && recent.Count < limit; i--)
            {
                recent.Add(_inOrder[i] with { }); // a copy: the flag may change under the lock
            }

            return recent;
        }
    }

    /// <summary>Notices held for <paramref name="partner"/> (not yet acknowledged).</summary>
    public int PendingFor(PartnerInfo partner)
    {
        lock (_lock)
        {
            return _pendingByPartner.TryGetValue(partner.Id, out var pending) ? pending.Count : 0;
        }
    }

    /// <summary>
    /// Accepts a checked report (<see cref="AbuseReportCheck"/>) from <paramref name="reporter"/> against
    /// <paramref name="reported"/>: completes with its ack once it is durable. Never blocks the caller.
    /// </summary>
    public Task<AbuseReportAck> AcceptAsync(PartnerInfo reporter, PartnerInfo reported, AbuseReport report)
    {
        UInt128 reportId = BinaryPrimitives.ReadUInt128BigEndian(report.ReportId.Span);
        lock (_lock)
        {
            if (_byReportId.TryGetValue((reporter.Id, reportId), out Task<AbuseReportAck>? first))
            {
                return first;
            }

            var notice = new AbuseNotice
            {
                NoticeId = ++_lastNoticeId,
                Report = report,
                AcceptedAtMs = _clock.GetUtcNow().ToUnixTimeMilliseconds(),
            };
            Verify(reporter, reported, report, notice);
            Task<AbuseReportAck> accepted = StoreAsync(reporter, reported, notice);
            _byReportId[(reporter.Id, reportId)] = accepted;
            ReportAbuse(reporter, reported, report, notice.AcceptedAtMs);
            return accepted;
        }
    }

    /// <summary>One support event per message the report names (one with message id 0 when it names none). Reports are rare.</summary>
    private void ReportAbuse(PartnerInfo reporter, PartnerInfo reported, AbuseReport report, long nowMs)
    {
        if (Support.IsEmpty)
        {
            return;
        }

        var reportId = new System.Buffers.ReadOnlySequence<byte>(report.ReportId.Memory);
        if (report.MessageIds.Count == 0)
        {
            Support.AbuseReported(reporter, reported, reportId, UInt128.Zero, nowMs);
        }

        foreach (ByteString id in report.MessageIds)
        {
            UInt128 messageId = id.Length == 16 ? BinaryPrimitives.ReadUInt128BigEndian(id.Span) : UInt128.Zero;
            Support.AbuseReported(reporter, reported, reportId, messageId, nowMs);
        }
    }

    /// <summary>
    /// Replays one interop record at start; false when it is not one of the abuse records.
    /// </summary>
    /// <exception cref="InvalidDataException">The record cannot be read.</exception>
    public bool Replay(byte type, ReadOnlyMemory<byte> payload)
    {
        switch (type)
        {
            case InteropRecordTypes.AbuseReport:
                AbuseNotice notice;
                try
                {
                    notice = AbuseNotice.Parser.ParseFrom(payload.Span);
                }
                catch (InvalidProtocolBufferException ex)
                {
                    throw new InvalidDataException("an abuse report record of the interop log cannot be read: " + ex.Message, ex);
                }

                lock (_lock)
                {
                    _lastNoticeId = Math.Max(_lastNoticeId, notice.NoticeId);
                    _byReportId[(notice.Report.ReporterPartner, BinaryPrimitives.ReadUInt128BigEndian(notice.Report.ReportId.Span))] = Task.FromResult(AckOf(notice));
                    Keep(notice);
                }

                return true;
            case InteropRecordTypes.AbuseNoticesAcked:
                lock (_lock)
                {
                    ReadOnlySpan<byte> ids = payload.Span;
                    for (; ids.Length >= 8; ids = ids[8..])
                    {
                        Settle(BinaryPrimitives.ReadUInt64LittleEndian(ids));
                    }
                }

                return true;
            default:
                return false;
        }
    }

    /// <summary>After replay: logs what is held for partners that have not taken it yet.</summary>
    public void OnReplayed()
    {
        lock (_lock)
        {
            foreach ((string partner, SortedDictionary<ulong, AbuseNotice> pending) in _pendingByPartner)
            {
                if (pending.Count > 0)
                {
                    InteropLog.AbuseNoticesHeld(_logger, pending.Count, partner);
                }
            }
        }
    }

    /// <summary>A session of <paramref name="partner"/> attached: every notice it has not acknowledged goes to it.</summary>
    public void HandOver(PartnerInfo partner, Func<Frame, bool> send)
    {
        AbuseNotice[] pending;
        lock (_lock)
        {
            if (!_pendingByPartner.TryGetValue(partner.Id, out var held) || held.Count == 0)
            {
                return;
            }

            pending = [.. held.Values];
        }

        foreach (AbuseNotice notice in pending)
        {
            if (!send(new Frame { AbuseNotice = notice }))
            {
                return; // outbox full or closing: the next session gets them
            }
        }
    }

    /// <summary>
    /// <paramref name="partner"/> has these notices: they are no longer held. Returns how many of the ids were
    /// notices held for it (others, e.g. acknowledged twice, are ignored).
    /// </summary>
    public int Acknowledge(PartnerInfo partner, IReadOnlyList<ulong> noticeIds)
    {
        var settled = new List<ulong>(noticeIds.Count);
        lock (_lock)
        {
            if (!_pendingByPartner.TryGetValue(partner.Id, out var pending))
            {
                return 0;
            }

            foreach (ulong id in noticeIds)
            {
                if (pending.ContainsKey(id))
                {
                    Settle(id);
                    settled.Add(id);
                }
            }
        }

        if (settled.Count > 0)
        {
            byte[] payload = new byte[settled.Count * 8];
            for (int i = 0; i < settled.Count; i++)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(payload.AsSpan(i * 8), settled[i]);
            }

            // Not awaited: a crash before it is durable only sends the notices once more (the partner dedups by id).
            _ = AppendAckedAsync(payload);
        }

        return settled.Count;
    }

    private async Task AppendAckedAsync(byte[] payload)
    {
        try
        {
            await _log.AppendAsync(InteropRecordTypes.AbuseNoticesAcked, payload);
        }
        catch (IOException ex)
        {
            InteropLog.InteropLogFailed(_logger, "abuse notice acknowledgements", ex.Message);
        }
    }

    /// <summary>Sorts the report's ids into verified (carried from the reported user to the reporter) and not.</summary>
    private static void Verify(PartnerInfo reporter, PartnerInfo reported, AbuseReport report, AbuseNotice notice)
    {
        IdempotencyIndex carried = reported.Idempotency;
        lock (carried.SyncRoot)
        {
            foreach (ByteString id in report.MessageIds)
            {
                bool verified = carried.TryGetCarried(BinaryPrimitives.ReadUInt128BigEndian(id.Span), out CarriedTo to)
                    && to.DeliveredBetween(reporter.IdUtf8, report.ReportedUser.Span, report.ReporterUser.Span);
                (verified ? notice.VerifiedMessageIds : notice.UnverifiedMessageIds).Add(id);
            }
        }
    }

    private async Task<AbuseReportAck> StoreAsync(PartnerInfo reporter, PartnerInfo reported, AbuseNotice notice)
    {
        await Task.Yield(); // the session's reader goes on; durability is awaited off its thread
        byte[] payload = notice.ToByteArray();
        try
        {
            await _log.AppendAsync(InteropRecordTypes.AbuseReport, payload);
        }
        catch (IOException)
        {
            lock (_lock)
            {
                _byReportId.Remove((reporter.Id, BinaryPrimitives.ReadUInt128BigEndian(notice.Report.ReportId.Span)));
            }

            throw;
        }

        lock (_lock)
        {
            Keep(notice);
        }

        InteropLog.AbuseReportAccepted(_logger, notice.NoticeId, reporter.Id, reported.Id, notice.Report.Reason, notice.VerifiedMessageIds.Count, notice.UnverifiedMessageIds.Count);
        ReportAccepted?.Invoke(reported, notice.Report.ReportedUser.Memory);
        SendLive(reported, new Frame { AbuseNotice = notice }); // held either way until acknowledged
        return AckOf(notice);
    }

    private static AbuseReportAck AckOf(AbuseNotice notice) => new()
    {
        ReportId = notice.Report.ReportId,
        AcceptedAtMs = notice.AcceptedAtMs,
        VerifiedMessages = (uint)notice.VerifiedMessageIds.Count,
        UnverifiedMessages = (uint)notice.UnverifiedMessageIds.Count,
    };

    /// <summary>Keeps a durable report: its summary for the admin, its notice until the reported partner has it. Under the lock.</summary>
    private void Keep(AbuseNotice notice)
    {
        AbuseReport report = notice.Report;
        var summary = new AbuseReportSummary(
            notice.NoticeId,
            notice.AcceptedAtMs,
            report.ReporterPartner,
            CarriedTo.UserHash(report.ReporterUser.Span),
            report.ReportedPartner,
            CarriedTo.UserHash(report.ReportedUser.Span),
            report.Reason,
            notice.VerifiedMessageIds.Count,
            notice.UnverifiedMessageIds.Count);
        _summaries[notice.NoticeId] = summary;
        _inOrder.Add(summary);
        ref SortedDictionary<ulong, AbuseNotice>? pending = ref CollectionsMarshal.GetValueRefOrAddDefault(_pendingByPartner, report.ReportedPartner, out _);
        pending ??= [];
        pending[notice.NoticeId] = notice;
    }

    /// <summary>The reported partner has notice <paramref name="noticeId"/>. Under the lock.</summary>
    private void Settle(ulong noticeId)
    {
        if (_summaries.TryGetValue(noticeId, out AbuseReportSummary? summary))
        {
            summary.DeliveredToReportedPartner = true;
            if (_pendingByPartner.TryGetValue(summary.ReportedPartner, out var pending))
            {
                pending.Remove(noticeId);
            }
        }
    }
}
