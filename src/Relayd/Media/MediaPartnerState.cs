namespace Relayd.Media;

/// <summary>
/// What the media router keeps per partner, found by the <see cref="Routing.PartnerInfo"/> itself: as a sender its
/// transfers, how many are open and how much of the spool they take; as a recipient its outbox and its connected
/// sessions. Guarded by the router's lock.
/// </summary>
internal sealed class MediaPartnerState(Routing.PartnerInfo partner)
{
    /// <summary>Largest blob this partner may send (its own limit, or the relay's), as configured now (a reload may change it).</summary>
    public long MaxBytes => partner.Settings.MaxMediaBytes;

    /// <summary>Transfers this partner sends, open or spooled, by transfer id.</summary>
    public Dictionary<UInt128, MediaTransfer> Transfers { get; } = [];

    /// <summary>Of <see cref="Transfers"/>, those still arriving.</summary>
    public int OpenTransfers { get; set; }

    /// <summary>Spool bytes <see cref="Transfers"/> hold or have reserved (their declared sizes): the quota's measure.</summary>
    public long SpoolBytes { get; set; }

    /// <summary>Blobs for this partner that wait for one of its sessions, the next first.</summary>
    public LinkedList<MediaTransfer> Outbox { get; } = new();

    /// <summary>This partner's connected sessions.</summary>
    public List<IMediaPeer> Peers { get; } = [];
}
