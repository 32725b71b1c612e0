using Google.Protobuf;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Interop;

/// <summary>Steps the abuse and read-receipt tests share: a message carried and acknowledged, a report, a wait for a READ receipt.</summary>
internal static class InteropFlows
{
    /// <summary>Sends from <paramref name="from"/> to <paramref name="to"/>, which takes and acknowledges it: the relay then counts it delivered.</summary>
    public static async Task<Envelope> CarriedAsync(RelayClient from, RelayClient to, string fromUser, string toUser)
    {
        Envelope sent = Envelopes.New(from.PartnerId, to.PartnerId, toUser: toUser, fromUser: fromUser);
        await Envelopes.AcceptedAsync(from, sent);
        Deliver deliver = await to.Deliveries.ReadAsync(TestContext.Current.CancellationToken).Within();
        Assert.Equal(sent.MessageId, deliver.Envelope.MessageId);
        await to.AcknowledgeAsync(deliver);
        await DeliveredAsync(from, sent.MessageId);
        return sent;
    }

    /// <summary>Waits for the DELIVERED receipt of <paramref name="messageId"/>: the relay has settled it.</summary>
    public static async Task DeliveredAsync(RelayClient sender, ByteString messageId)
    {
        while (true)
        {
            Receipt receipt = await sender.Receipts.ReadAsync(TestContext.Current.CancellationToken).Within();
            if (receipt.Status == ReceiptStatus.Delivered && receipt.MessageIds.Contains(messageId))
            {
                return;
            }
        }
    }

    /// <summary>The next READ receipt <paramref name="sender"/> gets (DELIVERED ones skipped).</summary>
    public static async Task<Receipt> NextReadAsync(RelayClient sender, int seconds = 10)
    {
        while (true)
        {
            Receipt receipt = await sender.Receipts.ReadAsync(TestContext.Current.CancellationToken).Within(seconds);
            if (receipt.Status == ReceiptStatus.Read)
            {
                return receipt;
            }
        }
    }

    public static ByteString NewId() => ByteString.CopyFrom(Guid.NewGuid().ToByteArray());

    public static AbuseReport Report(string reporterPartner, string reporterUser, string reportedPartner, string reportedUser, params ByteString[] messageIds)
    {
        var report = new AbuseReport
        {
            ReportId = NewId(),
            ReporterPartner = reporterPartner,
            ReporterUser = ByteString.CopyFromUtf8(reporterUser),
            ReportedPartner = reportedPartner,
            ReportedUser = ByteString.CopyFromUtf8(reportedUser),
            Reason = AbuseReason.AbuseHarassment,
            Note = "private note from the reporting user",
            DisclosedContent = ByteString.CopyFromUtf8("plaintext the user disclosed"),
        };
        report.MessageIds.AddRange(messageIds);
        return report;
    }

    /// <summary>The next abuse notice <paramref name="client"/> gets.</summary>
    public static async Task<AbuseNotice> NextNoticeAsync(RelayClient client, int seconds = 10) =>
        await client.AbuseNotices.ReadAsync(TestContext.Current.CancellationToken).Within(seconds);
}
