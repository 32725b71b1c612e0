using Relayd.Diagnostics;

namespace Relayd.Wal;

/// <summary>Where the write-ahead log lives and how it writes. Every size is in bytes.</summary>
public sealed record WalOptions
{
    private const int Page = 4096;
    private const int MaxBytes = 1 << 30;

    private readonly int _segmentBytes = 64 * 1024 * 1024;
    private readonly int _writeBufferBytes = 4 * 1024 * 1024;
    private readonly IWalFileSync _fileSync = LibcFileSync.Instance;
    private readonly WalCommitPolicy _commitPolicy = WalCommitPolicy.GroupCommit;

    /// <summary>
    /// The directory holding the segment files (<c>wal-&lt;16 hex digits&gt;.log</c>); created if missing. Nothing else
    /// may write into it; the log holds an exclusive lock on <c>wal.lock</c> in it while open.
    /// </summary>
    public required string Directory { get; init; }

    /// <summary>
    /// The size of each segment file, pre-written with zeros when it is created. A multiple of 4096 between 4 KiB and
    /// 1 GiB. Defaults to 64 MiB: whole segments are the unit of retention, and pre-writing one takes a fraction of
    /// a second in the background. Existing segments keep the size they were created with.
    /// </summary>
    public int SegmentBytes
    {
        get => _segmentBytes;
        init => _segmentBytes = CheckSize(value, nameof(SegmentBytes));
    }

    /// <summary>
    /// The size of each of the two fixed write buffers: one fills while the log writer writes and syncs the other, so
    /// this bounds one group commit. A multiple of 4096 between 4 KiB and 1 GiB. Defaults to 4 MiB, several times the
    /// largest batches the relay prototype produced (about 330 KiB of 1 KiB messages, 770 KiB of 64 KiB ones). Together with
    /// <see cref="SegmentBytes"/> it limits a record's payload to <see cref="MaxPayloadBytes"/>.
    /// </summary>
    public int WriteBufferBytes
    {
        get => _writeBufferBytes;
        init => _writeBufferBytes = CheckSize(value, nameof(WriteBufferBytes));
    }

    /// <summary>
    /// The flush used for commits. Defaults to <see cref="LibcFileSync.Instance"/> (the real fdatasync); tests replace
    /// it to inject I/O errors.
    /// </summary>
    public IWalFileSync FileSync
    {
        get => _fileSync;
        init => _fileSync = value ?? throw new ArgumentNullException(nameof(FileSync));
    }

    /// <summary>How batches are committed. Defaults to <see cref="WalCommitPolicy.GroupCommit"/> (pwrite + fdatasync per batch).</summary>
    public WalCommitPolicy CommitPolicy
    {
        get => _commitPolicy;
        init => _commitPolicy = value ?? throw new ArgumentNullException(nameof(CommitPolicy));
    }

    /// <summary>
    /// Where the log writer records each commit's duration and bytes (<c>relayd.wal.*</c>). Defaults to null: not
    /// recorded (tools such as <c>relayd wal verify</c>, tests of the log alone).
    /// </summary>
    public RelayMetrics? Metrics { get; init; }

    /// <summary>
    /// The largest payload one record may carry: min(<see cref="SegmentBytes"/>, <see cref="WriteBufferBytes"/>) − 16
    /// (the record header), so a record always fits in an empty segment and in an empty write buffer.
    /// </summary>
    public int MaxPayloadBytes => Math.Min(SegmentBytes, WriteBufferBytes) - WalRecordHeader.Size;

    private static int CheckSize(int value, string name) =>
        value is >= Page and <= MaxBytes && value % Page == 0
            ? value
            : throw new ArgumentOutOfRangeException(name, value, $"{name} must be a multiple of {Page} between {Page} and {MaxBytes} bytes");
}
