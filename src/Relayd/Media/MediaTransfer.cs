using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using Relayd.Protocol.V1;
using Relayd.Routing;

namespace Relayd.Media;

/// <summary>Where a transfer is in its life. Transitions happen under the router's lock.</summary>
internal enum MediaTransferState
{
    /// <summary>Opened by the sender; chunks are arriving (or will, after a MediaResume).</summary>
    Receiving,

    /// <summary>Verified, fsynced and waiting in the recipient partner's outbox.</summary>
    Spooled,

    /// <summary>A session of the recipient partner is streaming it.</summary>
    Sending,

    /// <summary>Streamed completely; waiting for the recipient's MediaReceived.</summary>
    Sent,

    /// <summary>Delivered, expired, aborted: its files are deleted.</summary>
    Gone,
}

/// <summary>
/// One media blob moving through the relay. While it arrives, the chunk path (under <c>lock(this)</c>) appends to its
/// spool file and its running SHA-256; the relay never holds more of it in memory than the chunk in hand.
/// </summary>
internal sealed class MediaTransfer
{
    public MediaTransfer(UInt128 id, MediaOpen open, PartnerInfo sender, PartnerInfo recipient, string basePath, long expiresAtMs)
    {
        Id = id;
        Open = open;
        Sender = sender;
        Recipient = recipient;
        BasePath = basePath;
        ExpiresAtMs = expiresAtMs;
        TotalSize = (long)open.TotalSize;
    }

    public UInt128 Id { get; }

    /// <summary>The MediaOpen as the sender wrote it; sent on to the recipient unchanged.</summary>
    public MediaOpen Open { get; }

    public PartnerInfo Sender { get; }

    public PartnerInfo Recipient { get; }

    /// <summary>Spool path without extension (see <see cref="MediaSpool"/>).</summary>
    public string BasePath { get; }

    public long TotalSize { get; }

    public long ExpiresAtMs { get; }

    private volatile MediaTransferState _state;

    /// <summary>Read without a lock by the session streaming it; <see cref="AbortCode"/> is set before it becomes Gone.</summary>
    public MediaTransferState State
    {
        get => _state;
        set => _state = value;
    }

    /// <summary>
    /// Its spool file exists, so a recipient session may stream it (under the router's lock). False only while
    /// MediaOpen creates the files: a session attaching in that moment must not try to open them.
    /// </summary>
    public bool Streamable { get; set; }

    // ---- receiving (guarded by lock(this)) ----

    /// <summary>The open <c>.part</c> file; null before a resume after a restart, and once committed.</summary>
    public SafeFileHandle? Part { get; set; }

    /// <summary>SHA-256 of bytes [0, <see cref="Received"/>); null after a restart until a resume rebuilds it from the file.</summary>
    public IncrementalHash? Hash { get; set; }

    private long _received;

    /// <summary>
    /// Next offset the relay expects; everything below it is written to the spool file. Written under
    /// <c>lock(this)</c>, read without it by a recipient session streaming the blob while it arrives.
    /// </summary>
    public long Received
    {
        get => Volatile.Read(ref _received);
        set => Volatile.Write(ref _received, value);
    }

    /// <summary>Why an upload was dropped (State Gone): what a recipient that was streaming it is told.</summary>
    public ErrorCode AbortCode { get; set; }

    private long _creditLimit;

    /// <summary>
    /// The sender may send bytes below this offset (the credit window's end). Written under <c>lock(this)</c>; read
    /// without it by the writer that forwards the transfer, to see whether a grant is due.
    /// </summary>
    public long CreditLimit
    {
        get => Volatile.Read(ref _creditLimit);
        set => Volatile.Write(ref _creditLimit, value);
    }

    /// <summary>The credit limit the sender has been told of (under <c>lock(this)</c>); grants send the difference.</summary>
    public long CreditAnnounced { get; set; }

    /// <summary>
    /// Set after a refused chunk (wrong offset, beyond the window): further chunks are dropped silently until the
    /// sender asks where to continue with MediaResume, so one mistake costs one Error frame, not one per chunk.
    /// </summary>
    public bool AwaitingResume { get; set; }

    /// <summary>The session the sender uses now; credit and errors go there. Null while the sender is away.</summary>
    public IMediaPeer? Uploader { get; set; }

    /// <summary>Environment.TickCount64 of the last chunk, open or resume (idle timeout).</summary>
    public long LastActivityTicks { get; set; } = Environment.TickCount64;

    // ---- delivering (transitions under the router's lock) ----

    /// <summary>
    /// The recipient session streaming it: in state Sending or Sent, or already in state Receiving when the recipient
    /// was connected at MediaOpen (cut-through: chunks are forwarded as they arrive, MediaClose only once verified).
    /// </summary>
    public IMediaPeer? Downloader { get; set; }

    /// <summary>
    /// Set (under <c>lock(this)</c>) while the downloader's session forwards chunks straight from the sender's read
    /// loop: each accepted chunk is also copied into this queue. Null while the blob goes only to the spool.
    /// </summary>
    public MediaForwardQueue? Forward { get; set; }

    private long _forwarded;

    /// <summary>Offset up to which the forwarding writer has written to the recipient's connection (paces the sender).</summary>
    public long Forwarded
    {
        get => Volatile.Read(ref _forwarded);
        set => Volatile.Write(ref _forwarded, value);
    }

    /// <summary>Environment.TickCount64 when <see cref="Forwarded"/> last moved (a recipient that stops reading is detected).</summary>
    public long ForwardedTicks { get; set; }

    /// <summary>Offset the next delivery starts from (a recipient's MediaResume sets it).</summary>
    public long DeliveryStartOffset { get; set; }

    /// <summary>Closes the spool file and the hash (under <c>lock(this)</c>).</summary>
    public void ReleaseReceiving()
    {
        Part?.Dispose();
        Part = null;
        Hash?.Dispose();
        Hash = null;
    }
}

/// <summary>A partner session as the media code sees it.</summary>
internal interface IMediaPeer
{
    PartnerInfo Partner { get; }

    long ConnectionId { get; }

    /// <summary>Queues a frame for the partner; only from this peer's own read loop (it shares the reply pipe).</summary>
    void Reply(Frame frame);

    /// <summary>Queues a frame for the partner from any thread (timers, other sessions).</summary>
    void Post(Frame frame);

    /// <summary>Tells the peer's writer that media may be waiting for it.</summary>
    void WakeMediaWriter();

    /// <summary>
    /// Has the peer's writer tell the sender of <paramref name="transfer"/> about credit granted since the last
    /// announcement (one MediaCredit frame, written without allocating). From any thread.
    /// </summary>
    void AnnounceCredit(MediaTransfer transfer);
}
