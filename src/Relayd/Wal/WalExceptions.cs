namespace Relayd.Wal;

/// <summary>The base of the log's own exceptions.</summary>
public class WalException : IOException
{
    /// <summary>Creates the exception with a message and its cause.</summary>
    public WalException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// The log on disk is damaged in a way that is not a torn write at its tail: a record that was once durable is wrong
/// or missing. The log refuses to open rather than skip it; <see cref="WriteAheadLog.Verify"/> lists every problem and
/// <see cref="WriteAheadLog.Repair"/> moves the damaged part aside.
/// </summary>
public sealed class WalCorruptionException : WalException
{
    /// <summary>Creates the exception for damage at <paramref name="offset"/> of <paramref name="segmentPath"/>.</summary>
    public WalCorruptionException(string segmentPath, long offset, string problem)
        : base($"WAL segment {segmentPath} is corrupt at byte offset {offset}: {problem}. "
            + "Nothing was changed; 'relayd wal verify --dir <dir>' lists every problem and 'relayd wal repair --dir <dir>' moves the damaged tail to quarantine/.")
    {
        SegmentPath = segmentPath;
        Offset = offset;
        Problem = problem;
    }

    /// <summary>The damaged (or missing) segment file.</summary>
    public string SegmentPath { get; }

    /// <summary>The byte offset in <see cref="SegmentPath"/> of the first damaged record.</summary>
    public long Offset { get; }

    /// <summary>What was wrong, e.g. "payload CRC-32C mismatch (…)".</summary>
    public string Problem { get; }
}

/// <summary>
/// The log has failed (a write or fdatasync returned an error) and accepts nothing more: the process must exit and
/// recover from disk on restart. <see cref="Exception.InnerException"/> is the original error (its HResult is the errno).
/// </summary>
public sealed class WalFailedException : WalException
{
    /// <summary>Creates the exception with a message and the original failure.</summary>
    public WalFailedException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// A new segment could not be created because the filesystem is full (ENOSPC or EDQUOT). Not a failure of the log:
/// nothing acknowledged is affected, and appends succeed again once space is freed.
/// </summary>
public sealed class WalDiskFullException : WalException
{
    /// <summary>Creates the exception with a message and the underlying error.</summary>
    public WalDiskFullException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Whether <paramref name="exception"/> is ENOSPC (28) or EDQUOT (122) from the file system.</summary>
    internal static bool IsDiskFull(Exception exception) =>
        exception is IOException { HResult: 28 or 122 };
}
