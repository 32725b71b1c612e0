using System.Text;
using Relayd.Protocol.V1;
using Relayd.Storage;

namespace Relayd.Routing;

/// <summary>An approved partner as the relay knows it at run time.</summary>
internal sealed class PartnerInfo : Admission.IAdmissionPartner
{
    private static int s_slots = -1;
    private int _suspended;
    private long _envelopesIn;
    private long _envelopesOut;

    public PartnerInfo(PartnerOptions options, RelayLimits limits, long defaultMaxMediaBytes = MediaOptions.DefaultMaxBytes, InteropOptions? interop = null)
    {
        Id = options.Id;
        Slot = Interlocked.Increment(ref s_slots);
        IdUtf8 = Encoding.UTF8.GetBytes(options.Id);
        MetricTag = Diagnostics.RelayMetrics.PartnerTag(options.Id);
        _settings = new PartnerSettings(options, limits, defaultMaxMediaBytes, interop);
        Mailbox = new PartnerMailbox(limits.ShardCount, limits);
        Idempotency = new IdempotencyIndex(limits.DedupCapacityPerPartner, limits.DedupWindow);
        HeldReceipts = new HeldReceipts(limits.HeldReceiptsPerPartner);
    }

    private volatile PartnerSettings _settings;
    private volatile bool _retired;

    /// <summary>Receipts for this partner's messages that arrived while it had no open connection.</summary>
    public HeldReceipts HeldReceipts { get; }

    public string Id { get; }

    /// <inheritdoc cref="Admission.IAdmissionPartner.Slot"/>
    public int Slot { get; }

    public byte[] IdUtf8 { get; }

    /// <summary>This partner's <c>partner</c> tag for the metrics, made once: recording with it allocates nothing.</summary>
    public KeyValuePair<string, object?> MetricTag { get; }

    /// <summary>Its configured settings now; a reload swaps them (<see cref="Reconfigure"/>).</summary>
    public PartnerSettings Settings => _settings;

    public int MaxConnections => _settings.MaxConnections;

    /// <summary>Bit k set: content kind k accepted. 0 = every kind.</summary>
    public ulong AcceptedKindsMask => _settings.AcceptedKindsMask;

    public IReadOnlyList<ContentKind> AcceptedKinds => _settings.AcceptedKinds;

    public RateLimitSettings RateLimits => _settings.RateLimits;

    /// <summary>
    /// True once a reload removed it from the approved partners: its sessions were sent GoAway, and what they still
    /// send is refused (PARTNER_NOT_APPROVED). Approved again, it gets a new object.
    /// </summary>
    public bool IsRetired => _retired;

    /// <summary>Applies reloaded settings (a kept partner); what is queued for it and its indexes stay.</summary>
    public void Reconfigure(PartnerSettings settings) => _settings = settings;

    /// <summary>Marks it removed from the approved partners (see <see cref="IsRetired"/>).</summary>
    public void Retire() => _retired = true;

    public PartnerMailbox Mailbox { get; }

    public IdempotencyIndex Idempotency { get; }

    /// <summary>Largest frame body this partner's connections read (their Hello.max_frame_bytes combined); 0 = none declared.</summary>
    public int DeclaredMaxFrameBytes => Mailbox.Declared.MaxFrameBytes;

    ReadOnlySpan<byte> Admission.IAdmissionPartner.IdUtf8 => IdUtf8;

    /// <summary>Whether envelopes and media of <paramref name="contentKind"/> may go to this partner: its configuration and its connections' Hello allow it.</summary>
    public bool Accepts(int contentKind)
    {
        ulong mask = _settings.AcceptedKindsMask;
        return (mask == 0 || ContentKinds.InMask(mask, contentKind)) && Mailbox.Declared.Accepts(contentKind);
    }

    /// <summary>Why <see cref="Accepts"/> is false for <paramref name="contentKind"/>: the detail of CONTENT_KIND_UNSUPPORTED.</summary>
    public string KindRefusal(int contentKind) =>
        AcceptedKindsMask != 0 && !ContentKinds.InMask(AcceptedKindsMask, contentKind)
            ? $"partner '{Id}' does not accept {ContentKinds.Name(contentKind)}: the relay's configuration allows it {ContentKinds.Names(AcceptedKindsMask)}"
            : $"partner '{Id}' does not accept {ContentKinds.Name(contentKind)}: its connections declared accepted_kinds {ContentKinds.Names(Mailbox.Declared.Kinds)} in Hello";

    /// <summary>
    /// Set by an operator (<c>relayd ctl suspend</c>): the partner's sessions are closed, its new connections and
    /// envelopes and media to or from it are refused with PARTNER_SUSPENDED. Lives in memory only: a reload keeps it
    /// (the object survives for a kept partner), a restart clears it.
    /// </summary>
    public bool IsSuspended => Volatile.Read(ref _suspended) != 0;

    /// <summary>Envelopes accepted from this partner since the relay started (resends not counted).</summary>
    public long EnvelopesIn => Interlocked.Read(ref _envelopesIn);

    /// <summary>Envelopes this partner acknowledged (DeliveryAck) since the relay started.</summary>
    public long EnvelopesOut => Interlocked.Read(ref _envelopesOut);

    /// <summary>Suspends the partner; false when it already was.</summary>
    public bool Suspend() => Interlocked.Exchange(ref _suspended, 1) == 0;

    /// <summary>Lifts a suspension; false when the partner was not suspended.</summary>
    public bool Resume() => Interlocked.Exchange(ref _suspended, 0) == 1;

    /// <summary>Counts one envelope accepted from this partner.</summary>
    public void CountEnvelopeIn() => Interlocked.Increment(ref _envelopesIn);

    /// <summary>Counts envelopes this partner acknowledged.</summary>
    public void CountEnvelopesOut(int count) => Interlocked.Add(ref _envelopesOut, count);
}
