using System.Buffers;
using System.Security.Cryptography;
using System.Threading.Channels;
using CsCheck;
using Relayd.Routing;
using Relayd.Support.Evidence;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Support.Evidence;

/// <summary>The data path's side of evidence: the right hashes from any slicing, nothing allocated, a full queue never waited for.</summary>
public sealed class EvidenceRecorderTests
{
    private readonly PartnerInfo _alpha = new(new PartnerOptions { Id = "alpha" }, new RelayLimits());
    private readonly PartnerInfo _beta = new(new PartnerOptions { Id = "beta" }, new RelayLimits());

    private static AcceptedEnvelope Envelope(PartnerInfo sender, PartnerInfo recipient, UInt128 id, in ReadOnlySequence<byte> senderUser, in ReadOnlySequence<byte> recipientUser, in ReadOnlySequence<byte> ciphertext) => new()
    {
        Sender = sender,
        ConnectionId = 1,
        MessageId = id,
        Recipient = recipient,
        SenderUser = senderUser,
        RecipientUser = recipientUser,
        Ciphertext = ciphertext,
        FrameBytes = 100,
        Shard = 0,
        LogOnly = false,
        AcceptedAtMs = 1_764_000_000_000,
    };

    [Fact]
    public void The_queued_hashes_are_the_documented_user_hash_and_the_ciphertext_SHA256_however_the_frame_is_sliced()
    {
        Gen.Select(Gen.Byte.Array[0, 400], Gen.Byte.Array[0, 400], Gen.Byte.Array[0, 5000], Gen.Int[1, 700]).Sample((senderUser, recipientUser, ciphertext, chunk) =>
        {
            var queue = Channel.CreateBounded<EvidenceItem>(16);
            var recorder = new EvidenceRecorder(queue.Writer);
            recorder.EnvelopeAccepted(Envelope(_alpha, _beta, 7, SegmentedSequence.Of(senderUser, chunk), SegmentedSequence.Of(recipientUser, chunk), SegmentedSequence.Of(ciphertext, chunk)));
            Assert.True(queue.Reader.TryRead(out EvidenceItem item));
            Assert.Equal(EvidenceItemKind.Accepted, item.Kind);
            Assert.Equal(EvidenceLayouts.UserHash("alpha", senderUser), ((ReadOnlySpan<byte>)item.SenderUserHash).ToArray());
            Assert.Equal(EvidenceLayouts.UserHash("beta", recipientUser), ((ReadOnlySpan<byte>)item.RecipientUserHash).ToArray());
            Assert.Equal(SHA256.HashData(ciphertext), ((ReadOnlySpan<byte>)item.CiphertextSha256).ToArray());
        });
    }

    [Fact]
    public void Recording_allocates_nothing_per_message_and_a_full_queue_drops_and_counts_instead_of_waiting()
    {
        const int Capacity = 50_000;
        var queue = Channel.CreateBounded<EvidenceItem>(new BoundedChannelOptions(Capacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        var recorder = new EvidenceRecorder(queue.Writer);
        byte[] cipher = Envelopes.RandomCiphertext(1024);
        ReadOnlySequence<byte> whole = new(cipher), sliced = SegmentedSequence.Of(cipher, 300), user = new("user-1"u8.ToArray());

        void Record(int n)
        {
            for (int i = 0; i < n; i++)
            {
                recorder.EnvelopeAccepted(Envelope(_alpha, _beta, (UInt128)i, user, user, (i & 1) == 0 ? whole : sliced));
                recorder.EnvelopeDelivered(_alpha, (UInt128)i, _beta, 2, (ulong)i, 5);
                recorder.EnvelopeAcknowledged(_alpha, (UInt128)i, _beta, 2, (ulong)i, 1, 3, 6);
            }
        }

        // Warm up: the queue's buffer grows to its capacity once, the thread gets its hasher, the code is jitted.
        Record(Capacity);
        while (queue.Reader.TryRead(out _))
        {
        }

        long dropped = recorder.Dropped;
        long before = GC.GetAllocatedBytesForCurrentThread();
        Record(Capacity / 2); // two items a message (accepted, acknowledged; a delivery queues nothing): now full
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        Assert.Equal(dropped, recorder.Dropped);

        Record(100); // over capacity: none of these fit
        Assert.Equal(Capacity, queue.Reader.Count);
        Assert.Equal(dropped + 200, recorder.Dropped);

        Assert.True(queue.Reader.TryRead(out EvidenceItem accepted));
        Assert.True(queue.Reader.TryRead(out EvidenceItem acknowledged));
        Assert.Equal((EvidenceItemKind.Accepted, EvidenceItemKind.Acknowledged), (accepted.Kind, acknowledged.Kind));
        Assert.Equal((3L, 6L), (acknowledged.DeliveredAtMs, acknowledged.AtMs)); // the Deliver's first write, the ack
    }
}
