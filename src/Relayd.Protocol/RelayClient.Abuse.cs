using System.Buffers.Binary;
using System.Threading.Channels;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;

namespace Relayd.Protocol;

/// <summary>Abuse reports (docs/protocol.md, "Abuse reports"): reporting one of another partner's users, and the notices about this partner's users.</summary>
public sealed partial class RelayClient
{
    private const int AbuseNoticeBufferCapacity = 1024;

    private readonly Dictionary<UInt128, TaskCompletionSource<AbuseReportAck>> _pendingReports = [];
    private readonly Channel<AbuseNotice> _abuseNotices = Channel.CreateBounded<AbuseNotice>(new BoundedChannelOptions(AbuseNoticeBufferCapacity) { SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });

    /// <summary>
    /// Abuse notices: reports against this partner's users, which it moderates. Each is sent again on every new
    /// connection until <see cref="AcknowledgeAbuseNoticeAsync(AbuseNotice)"/> says it is stored (the same
    /// <see cref="AbuseNotice.NoticeId"/>: keep the first).
    /// </summary>
    public ChannelReader<AbuseNotice> AbuseNotices => _abuseNotices.Reader;

    /// <summary>The abuse notices as they arrive (see <see cref="AbuseNotices"/>).</summary>
    public IAsyncEnumerable<AbuseNotice> ReadAbuseNoticesAsync(CancellationToken cancellationToken = default) =>
        _abuseNotices.Reader.ReadAllAsync(cancellationToken);

    /// <summary>
    /// Reports a user of another partner; completes with the relay's ack once the report is durable on the relay (how
    /// many of its message ids the relay confirmed it carried from the reported user to the reporter). A resend with
    /// the same report_id gets the same ack.
    /// </summary>
    /// <exception cref="RelayException">The relay refused the report (e.g. INVALID_REQUEST naming the field), or the connection ended first.</exception>
    public Task<AbuseReportAck> ReportAbuseAsync(AbuseReport report, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(report);
        if (report.ReportId.Length != 16)
        {
            throw new RelayException(ErrorCode.InvalidRequest, "report_id must be 16 bytes");
        }

        if (_failure is { } failure)
        {
            return Task.FromException<AbuseReportAck>(failure);
        }

        UInt128 id = BinaryPrimitives.ReadUInt128BigEndian(report.ReportId.Span);
        TaskCompletionSource<AbuseReportAck> pending;
        lock (_pendingReports)
        {
            if (!_pendingReports.TryGetValue(id, out pending!))
            {
                pending = new TaskCompletionSource<AbuseReportAck>(TaskCreationOptions.RunContinuationsAsynchronously);
                _pendingReports.Add(id, pending);
            }
        }

        WriteInteropFrame(new Frame { AbuseReport = report });
        return AwaitAnswerAsync(pending.Task, cancellationToken);
    }

    /// <summary>Tells the relay this partner has stored the notice: it is no longer sent again.</summary>
    public ValueTask AcknowledgeAbuseNoticeAsync(AbuseNotice notice)
    {
        ArgumentNullException.ThrowIfNull(notice);
        return AcknowledgeAbuseNoticesAsync([notice.NoticeId]);
    }

    /// <summary>Tells the relay this partner has stored these notices (their <see cref="AbuseNotice.NoticeId"/>s).</summary>
    public ValueTask AcknowledgeAbuseNoticesAsync(IEnumerable<ulong> noticeIds)
    {
        var ack = new AbuseNoticeAck();
        ack.NoticeIds.AddRange(noticeIds);
        if (ack.NoticeIds.Count > 0)
        {
            WriteInteropFrame(new Frame { AbuseNoticeAck = ack });
        }

        return ValueTask.CompletedTask;
    }

    private void OnAbuseReportAck(AbuseReportAck ack)
    {
        if (ack.ReportId.Length == 16 && TakePendingReport(ack.ReportId.Span) is { } pending)
        {
            pending.TrySetResult(ack);
        }
    }

    private ValueTask OnAbuseNoticeAsync(AbuseNotice notice, CancellationToken cancellationToken) =>
        _abuseNotices.Writer.WriteAsync(notice, cancellationToken);

    private bool FailAbuseReport(Error error)
    {
        if (error.ReportId.Length != 16 || TakePendingReport(error.ReportId.Span) is not { } pending)
        {
            return false;
        }

        pending.TrySetException(RelayException.FromError(error));
        return true;
    }

    private TaskCompletionSource<AbuseReportAck>? TakePendingReport(ReadOnlySpan<byte> reportId)
    {
        lock (_pendingReports)
        {
            _pendingReports.Remove(BinaryPrimitives.ReadUInt128BigEndian(reportId), out TaskCompletionSource<AbuseReportAck>? pending);
            return pending;
        }
    }

    /// <summary>The answer, or the connection's end (its failure) if that comes first.</summary>
    private async Task<T> AwaitAnswerAsync<T>(Task<T> answer, CancellationToken cancellationToken)
    {
        Task first = await Task.WhenAny(answer, _readLoop).WaitAsync(cancellationToken);
        if (first == answer || answer.IsCompleted)
        {
            return await answer;
        }

        throw _failure as RelayException ?? new RelayException(ErrorCode.ShuttingDown, "the connection to the relay ended before it answered");
    }

    private void WriteInteropFrame(Frame frame)
    {
        if (_failure is { } failure)
        {
            throw failure;
        }

        lock (_writeLock)
        {
            FrameWriter.Write(_output.Writer, frame);
            FlushUnderLock();
        }
    }
}
