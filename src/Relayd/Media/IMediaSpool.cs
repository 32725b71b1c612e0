using Microsoft.Win32.SafeHandles;
using Relayd.Protocol.V1;

namespace Relayd.Media;

/// <summary>
/// Where media blobs wait between sender and recipient, as the router and the sessions streaming blobs use it: a
/// transfer's files are created with its MediaOpen, appended to while chunks arrive, made durable (the commit point:
/// after a restart a committed blob is delivered, a partial one resumed), read back for delivery, and deleted.
/// <see cref="MediaSpool"/> is the one on the local disk; another (a replicated one) plugs in here.
/// </summary>
internal interface IMediaSpool
{
    /// <summary>Where the spool is, for logs.</summary>
    string Location { get; }

    /// <summary>The spool's name for a transfer's files (what every other call takes).</summary>
    string BasePath(string recipientPartner, string senderPartner, UInt128 transferId);

    /// <summary>Creates a transfer's durable metadata and its empty partial blob; returns the blob open for appending.</summary>
    SafeFileHandle Create(string basePath, MediaOpen open);

    /// <summary>Opens an existing partial blob to continue appending (a resume after a restart).</summary>
    SafeFileHandle OpenPart(string basePath);

    /// <summary>Writes bytes of a partial blob at <paramref name="offset"/>.</summary>
    void Write(SafeFileHandle part, ReadOnlySpan<byte> data, long offset);

    /// <summary>Starts writing back a range of a partial blob without waiting for it (best effort).</summary>
    void StartWriteback(SafeFileHandle part, long offset, long length);

    /// <summary>Makes what was written to a partial blob durable.</summary>
    void Flush(SafeFileHandle part);

    /// <summary>Makes a complete partial blob durable and committed; closes <paramref name="part"/>.</summary>
    void Commit(SafeFileHandle part, string basePath);

    /// <summary>Opens a blob for reading: the partial one while it still arrives (<paramref name="arriving"/>), else the committed one.</summary>
    SafeFileHandle OpenForReading(string basePath, bool arriving);

    /// <summary>Reads bytes of an open blob at <paramref name="offset"/>; returns how many (fewer at its end).</summary>
    int Read(SafeFileHandle file, Span<byte> buffer, long offset);

    /// <summary>Deletes every file of a transfer; missing files are fine.</summary>
    void Delete(string basePath);

    /// <summary>Every transfer an earlier run left; null when the spool was never created (nothing was ever spooled).</summary>
    IEnumerable<SpooledFile>? Scan();
}
