using CsCheck;
using Relayd.Protocol.V1;
using Relayd.Routing;
using Relayd.Support.Trace;

namespace Relayd.Tests.Support.Trace;

/// <summary>
/// The segment record layout round-trips every field, whatever is present: random entries of every kind (details up
/// to beyond the cut, non-ASCII, so bodies of both one- and two-byte lengths) written as the writer writes a batch and
/// read back as a query reads it.
/// </summary>
public sealed class TraceRecordCodecTests
{
    private static readonly PartnerInfo[] Partners =
    [
        new(new PartnerOptions { Id = "alpha" }, new RelayLimits()),
        new(new PartnerOptions { Id = "beta" }, new RelayLimits()),
        new(new PartnerOptions { Id = "a-partner-with-a-long-id-0123456789" }, new RelayLimits()),
    ];

    private static readonly Gen<TraceEntry> Entries =
        Gen.Select(Gen.Int[1, 20], Gen.Int[0, 7], Gen.Long[-5_000, 5_000], Gen.UInt, Gen.ULong, Gen.Int[-1, 2], Gen.Int[-1, 2], Gen.Long[0, long.MaxValue])
            .SelectMany(head => Gen.Select(Gen.ULong, Gen.Long[0, 1L << 40], Gen.Int[0, 30], Gen.Int[0, 4], Gen.UShort, Gen.ULong, Gen.ULong, Gen.OneOf(Gen.Char['a', 'z'], Gen.Char['\u00e0', '\u00ff']).Array[0, 220].Select(c => new string(c)).Null(),
                (number, bytes, code, status, shard, senderHash, recipientHash, detail) => new TraceEntry
                {
                    Kind = (TraceEventKind)head.Item1,
                    Flags = (TraceFlags)head.Item2,
                    AtMs = 1_800_000_000_000 + head.Item3,
                    Id = new UInt128(head.Item4, head.Item5),
                    Sender = head.Item6 < 0 ? null : Partners[head.Item6],
                    Recipient = head.Item7 < 0 ? null : Partners[head.Item7],
                    Session = head.Item8 % 1_000_000,
                    Number = number,
                    Bytes = bytes,
                    TotalBytes = bytes * 3,
                    Code = (ErrorCode)code,
                    Status = (ReceiptStatus)status,
                    Shard = shard,
                    SenderUserHash = senderHash,
                    RecipientUserHash = recipientHash,
                    Detail = detail,
                }));

    [Fact]
    public void Every_field_of_every_entry_reads_back_as_written()
    {
        Entries.Array[1, 40].Sample(entries =>
        {
            byte[] batch = new byte[entries.Length * 3 * TraceRecordCodec.MaxRecordBytes];
            var indexes = new Dictionary<string, int>();
            int length = 0;
            long baseMs = entries[0].AtMs;
            int IndexOf(PartnerInfo? partner)
            {
                if (partner is null)
                {
                    return -1;
                }

                if (!indexes.TryGetValue(partner.Id, out int index))
                {
                    index = indexes.Count;
                    indexes.Add(partner.Id, index);
                    length += TraceRecordCodec.WritePartner(batch.AsSpan(length), index, partner.Id);
                }

                return index;
            }

            foreach (TraceEntry entry in entries)
            {
                int sender = IndexOf(entry.Sender), recipient = IndexOf(entry.Recipient);
                length += TraceRecordCodec.Write(batch.AsSpan(length), entry, baseMs, sender, recipient);
            }

            var read = new List<TraceRecord>();
            Assert.True(TraceRecordCodec.ReadBatch(batch.AsSpan(0, length), baseMs, [], static (_, _) => true, read.Add));
            Assert.Equal(entries.Length, read.Count);
            for (int i = 0; i < entries.Length; i++)
            {
                TraceEntry e = entries[i];
                TraceRecord r = read[i];
                string? detail = e.Detail is { Length: > 0 } d ? Cut(d) : null;
                Assert.Equal(
                    (e.Kind, e.Flags, e.AtMs, e.Id, e.Sender?.Id, e.Recipient?.Id, e.Session, e.Number, e.Bytes, e.TotalBytes, e.Code, e.Status, (int)e.Shard, e.SenderUserHash, e.RecipientUserHash, detail),
                    (r.Kind, r.Flags, r.AtMs, r.Id, r.Sender, r.Recipient, r.Session, r.Number, r.Bytes, r.TotalBytes, r.Code, r.Status, r.Shard, r.SenderUserHash, r.RecipientUserHash, r.Detail));
            }
        }, iter: 500);
    }

    // What the codec keeps of a detail: the longest whole-character UTF-8 prefix of MaxDetailBytes.
    private static string Cut(string detail)
    {
        int chars = detail.Length;
        while (System.Text.Encoding.UTF8.GetByteCount(detail.AsSpan(0, chars)) > TraceRecordCodec.MaxDetailBytes)
        {
            chars--;
        }

        return detail[..chars];
    }
}
