using System.Buffers;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Relayd.Protocol.V1;
using Relayd.Routing;
using Relayd.Storage;
using Relayd.Support.Trace;

namespace Relayd.Tests.Support.Trace;

/// <summary>What the data path pays for the trace: no allocation per event in steady state, the users only hashed.</summary>
public sealed class TraceHotPathTests : IDisposable
{
    private readonly PartnerInfo _alpha = new(new PartnerOptions { Id = "alpha" }, new RelayLimits());
    private readonly PartnerInfo _beta = new(new PartnerOptions { Id = "beta" }, new RelayLimits());
    private readonly DirectoryInfo _wal = Directory.CreateTempSubdirectory("relayd-trace-hot-");

    public void Dispose() => _wal.Delete(recursive: true);

    [Fact]
    public async Task Recording_every_step_of_a_message_allocates_nothing_and_keeps_no_user_id_in_clear()
    {
        using TraceRecorder trace = TraceRecorder.Open(new TraceOptions(), _wal.FullName, TimeProvider.System, NullLogger.Instance);
        var senderUser = new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes("alice@example.org"));
        var recipientUser = new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes("bob@example.net"));
        var ciphertext = new ReadOnlySequence<byte>(new byte[1024]);
        var refusedId = new ReadOnlySequence<byte>(new byte[16]);
        void Message(UInt128 id)
        {
            trace.EnvelopeAccepted(new AcceptedEnvelope
            {
                Sender = _alpha, ConnectionId = 1, MessageId = id, Recipient = _beta, SenderUser = senderUser, RecipientUser = recipientUser,
                Ciphertext = ciphertext, FrameBytes = 1100, Shard = 3, LogOnly = false, AcceptedAtMs = 1_800_000_000_000, DurableAt = new DurableMark((ulong)id * 1200),
            });
            trace.EnvelopesDurable(_alpha, 1, new DurableMark((ulong)id * 1200), new DurableMark((ulong)id * 1200), 1, 1_800_000_000_001);
            trace.EnvelopeDelivered(_alpha, id, _beta, 2, (ulong)id, 1_800_000_000_002);
            trace.EnvelopeAcknowledged(_alpha, id, _beta, 2, (ulong)id, 1_800_000_000_000, 1_800_000_000_001, 1_800_000_000_003);
            trace.ReceiptProduced(_alpha, id, ReceiptStatus.Delivered, ErrorCode.Unspecified, 1, 1_800_000_000_004);
            trace.EnvelopeRefused(_alpha, 1, refusedId, 90, ErrorCode.UnknownRecipientPartner, "partner 'x' is not approved", 1_800_000_000_005);
        }

        for (int i = 1; i <= 1000; i++)
        {
            Message((UInt128)i); // warm-up: this thread's SipHash instance, the JIT's tiers
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 1001; i < 3001; i++)
        {
            Message((UInt128)i);
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);

        await trace.FlushAsync();
        MessageTrace? message = await TraceQuery.MessageAsync(trace, "alpha", 3000, TestContext.Current.CancellationToken);
        TraceRecord accepted = message!.Events.First(e => e.Kind == TraceEventKind.TraceAccepted);
        Assert.Equal(trace.Users.Hash(senderUser), accepted.SenderUserHash);
        Assert.NotEqual(accepted.SenderUserHash, accepted.RecipientUserHash);
        foreach (string file in Directory.EnumerateFiles(trace.Directory, "*.*").Where(f => !f.EndsWith(UserHasher.KeyFileName, StringComparison.Ordinal)))
        {
            byte[] bytes = File.ReadAllBytes(file);
            Assert.Equal(-1, bytes.AsSpan().IndexOf("alice@example.org"u8)); // neither user id in clear
            Assert.Equal(-1, bytes.AsSpan().IndexOf("bob@example.net"u8));
        }
    }
}
