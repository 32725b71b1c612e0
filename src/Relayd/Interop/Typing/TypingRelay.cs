using System.Buffers;
using Relayd.Admission;
using Relayd.Protocol.V1;
using Relayd.Routing;

namespace Relayd.Interop.Typing;

/// <summary>
/// Hands typing notices to a connected session of the recipient partner, live: never stored, never logged. A notice
/// nobody can show now (the recipient partner is offline, does not accept typing, or its outbox is full) is dropped
/// and counted: it is worthless a few seconds later, and the sender is not told (it would only retry something stale).
/// </summary>
internal sealed class TypingRelay
{
    /// <summary>How long a notice is worth showing after the relay received it (Signal drops ephemeral messages after 10 s).</summary>
    public const long FreshForMs = 10_000;

    private readonly PartnerDirectory _partners;
    private readonly AdmissionPipeline _admission;
    private readonly TimeProvider _clock;
    private long _delivered;
    private long _dropped;

    public TypingRelay(PartnerDirectory partners, InteropPolicy interop, TimeProvider clock)
    {
        _partners = partners;
        _admission = AdmissionPipelines.Typing(interop);
        _clock = clock;
    }

    /// <summary>Notices handed to a recipient's session.</summary>
    public long Delivered => Interlocked.Read(ref _delivered);

    /// <summary>Notices admitted but dropped: recipient offline, not accepting typing, outbox full, or stale when written.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>
    /// Admits <paramref name="typing"/> from <paramref name="sender"/> and queues it, stamped with relayed_at_ms, for a
    /// live session of the recipient partner that accepts typing. False with <paramref name="refusal"/> when refused
    /// (the sender is told); true when admitted, delivered or dropped.
    /// </summary>
    public bool Forward(ILiveSession sender, Protocol.V1.Typing typing, ILiveSessions sessions, out AdmissionRefusal refusal)
    {
        if (typing.SenderUser.IsEmpty || typing.RecipientUser.IsEmpty)
        {
            refusal = new AdmissionRefusal(ErrorCode.InvalidRequest, typing.SenderUser.IsEmpty ? "typing notice: sender_user is empty" : "typing notice: recipient_user is empty");
            return false;
        }

        PartnerInfo? recipient = _partners.Find(typing.RecipientPartner);
        long now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        var admission = new AdmissionRequest
        {
            Subject = AdmissionSubject.Typing,
            Sender = sender.Partner,
            SenderPartnerText = typing.SenderPartner,
            Recipient = recipient,
            RecipientPartnerText = typing.RecipientPartner,
            SenderUser = new ReadOnlySequence<byte>(typing.SenderUser.Memory),
            RecipientUser = new ReadOnlySequence<byte>(typing.RecipientUser.Memory),
            NowMs = now,
        };
        if (!_admission.Admit(admission, out refusal))
        {
            return false;
        }

        typing.RelayedAtMs = now;
        ILiveSession? session = recipient!.Mailbox.Declared.AcceptsTyping ? sessions.AnyLiveSessionOf(recipient) : null;
        if (session is not null && session.TryEnqueueFrame(new Frame { Typing = typing }))
        {
            Interlocked.Increment(ref _delivered);
        }
        else
        {
            Interlocked.Increment(ref _dropped);
        }

        return true;
    }

    /// <summary>
    /// Whether a queued notice is still worth writing at <paramref name="nowMs"/> (relay clock): at most
    /// <see cref="FreshForMs"/> after the relay received it. A stale one is counted as dropped.
    /// </summary>
    public bool StillFresh(Protocol.V1.Typing typing, long nowMs)
    {
        if (nowMs - typing.RelayedAtMs <= FreshForMs)
        {
            return true;
        }

        Interlocked.Increment(ref _dropped);
        return false;
    }

    /// <summary>The rule of <see cref="StillFresh"/> alone: what a test checks without a relay.</summary>
    public static bool IsFresh(long relayedAtMs, long nowMs) => nowMs - relayedAtMs <= FreshForMs;
}
