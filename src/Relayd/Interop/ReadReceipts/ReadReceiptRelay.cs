using System.Buffers.Binary;
using System.Text;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Routing;
using Relayd.Storage;

namespace Relayd.Interop.ReadReceipts;

/// <summary>
/// Read receipts (docs/protocol.md, "Read receipts"): a recipient partner's ReadReceipt becomes Receipt(READ) for the
/// sender partner, only for the ids the relay delivered from that sender to this recipient (its dedup index knows:
/// <see cref="CarriedTo"/>). To a live session of the sender now; held durably (the interop log) while it has none,
/// and handed to the next session that attaches, after a restart too.
/// </summary>
/// <remarks>
/// READ goes out whatever the sender's Hello.accepts_read_receipts says: that flag tells whether a partner's users
/// can be shown OTHER providers' receipts (Capabilities reports it to senders); a receipt for the sender's own
/// messages is the answer to what it sent, like DELIVERED.
/// </remarks>
internal sealed class ReadReceiptRelay
{
    /// <summary>Message ids one ReadReceipt may name (the frame limit bounds it anyway; this bounds a held record).</summary>
    public const int MaxMessageIds = 4096;

    /// <summary>Receipts held per sender partner at most; beyond it the oldest go (logged), as for DELIVERED receipts.</summary>
    public const int MaxHeldPerPartner = 65536;

    private readonly Lock _lock = new();
    private readonly PartnerDirectory _partners;
    private readonly IInteropRecords _log;
    private readonly TimeProvider _clock;
    private readonly ILogger _logger;
    private readonly Dictionary<string, SortedDictionary<ulong, Receipt>> _heldByPartner = new(StringComparer.Ordinal);
    private ulong _lastHoldId;

    public ReadReceiptRelay(PartnerDirectory partners, IInteropRecords log, TimeProvider clock, ILogger logger)
    {
        _partners = partners;
        _log = log;
        _clock = clock;
        _logger = logger;
    }

    /// <summary>Sends a frame to a live session of a partner; false when it has none. Set by the composition root.</summary>
    public Func<PartnerInfo, Frame, bool> SendLive { get; set; } = static (_, _) => false;

    /// <summary>READ receipts held for <paramref name="partner"/>, in frames.</summary>
    public int HeldFor(PartnerInfo partner)
    {
        lock (_lock)
        {
            return _heldByPartner.TryGetValue(partner.Id, out var held) ? held.Count : 0;
        }
    }

    /// <summary>
    /// <paramref name="reader"/> read the messages of <paramref name="receipt"/>: READ for those it received from
    /// the sender partner goes on. Returns how many ids were ignored (not delivered from that sender to it).
    /// </summary>
    /// <exception cref="RelayException">INVALID_REQUEST: no sender_partner, no ids, too many, or an id not 16 bytes.</exception>
    public int Forward(PartnerInfo reader, ReadReceipt receipt)
    {
        Check(receipt);
        PartnerInfo? sender = _partners.Find(receipt.SenderPartner);
        if (sender is null)
        {
            return receipt.MessageIds.Count;
        }

        var read = new Receipt
        {
            Status = ReceiptStatus.Read,
            AtMs = receipt.ReadAtMs > 0 ? receipt.ReadAtMs : _clock.GetUtcNow().ToUnixTimeMilliseconds(),
        };
        IdempotencyIndex carried = sender.Idempotency;
        lock (carried.SyncRoot)
        {
            foreach (ByteString id in receipt.MessageIds)
            {
                if (carried.TryGetCarried(BinaryPrimitives.ReadUInt128BigEndian(id.Span), out CarriedTo to) && to.DeliveredTo(reader.IdUtf8))
                {
                    read.MessageIds.Add(id);
                }
            }
        }

        if (read.MessageIds.Count > 0 && !SendLive(sender, new Frame { Receipt = read }))
        {
            Hold(sender, read);
        }

        return receipt.MessageIds.Count - read.MessageIds.Count;
    }

    /// <summary>A session of <paramref name="partner"/> attached: the READ receipts held for it go to it.</summary>
    public void HandOver(PartnerInfo partner, Func<Frame, bool> send)
    {
        KeyValuePair<ulong, Receipt>[] held;
        lock (_lock)
        {
            if (!_heldByPartner.TryGetValue(partner.Id, out var kept) || kept.Count == 0)
            {
                return;
            }

            held = [.. kept];
        }

        var handed = new List<ulong>(held.Length);
        foreach ((ulong holdId, Receipt receipt) in held)
        {
            if (!send(new Frame { Receipt = receipt }))
            {
                break; // outbox full or closing: the rest stay held
            }

            handed.Add(holdId);
        }

        if (handed.Count == 0)
        {
            return;
        }

        byte[] payload = new byte[handed.Count * 8];
        lock (_lock)
        {
            for (int i = 0; i < handed.Count; i++)
            {
                _heldByPartner[partner.Id].Remove(handed[i]);
                BinaryPrimitives.WriteUInt64LittleEndian(payload.AsSpan(i * 8), handed[i]);
            }
        }

        _ = AppendAsync(InteropRecordTypes.ReadReceiptsHandedOver, payload, "read receipts handed over");
    }

    /// <summary>Replays one interop record at start; false when it is not a read-receipt record.</summary>
    /// <exception cref="InvalidDataException">The record cannot be read.</exception>
    public bool Replay(byte type, ReadOnlyMemory<byte> payload)
    {
        ReadOnlySpan<byte> data = payload.Span;
        switch (type)
        {
            case InteropRecordTypes.ReadReceiptHeld:
                if (data.Length < 10 || data.Length < 10 + BinaryPrimitives.ReadUInt16LittleEndian(data[8..]))
                {
                    throw new InvalidDataException("a held read receipt record of the interop log is truncated");
                }

                ulong holdId = BinaryPrimitives.ReadUInt64LittleEndian(data);
                int partnerLength = BinaryPrimitives.ReadUInt16LittleEndian(data[8..]);
                string partner = Encoding.UTF8.GetString(data.Slice(10, partnerLength));
                Receipt receipt;
                try
                {
                    receipt = Receipt.Parser.ParseFrom(data[(10 + partnerLength)..]);
                }
                catch (InvalidProtocolBufferException ex)
                {
                    throw new InvalidDataException("a held read receipt record of the interop log cannot be read: " + ex.Message, ex);
                }

                lock (_lock)
                {
                    _lastHoldId = Math.Max(_lastHoldId, holdId);
                    HeldOf(partner)[holdId] = receipt;
                }

                return true;
            case InteropRecordTypes.ReadReceiptsHandedOver:
                lock (_lock)
                {
                    for (; data.Length >= 8; data = data[8..])
                    {
                        ulong id = BinaryPrimitives.ReadUInt64LittleEndian(data);
                        foreach (SortedDictionary<ulong, Receipt> held in _heldByPartner.Values)
                        {
                            held.Remove(id);
                        }
                    }
                }

                return true;
            default:
                return false;
        }
    }

    private static void Check(ReadReceipt receipt)
    {
        if (string.IsNullOrEmpty(receipt.SenderPartner))
        {
            throw new RelayException(ErrorCode.InvalidRequest, "sender_partner is empty");
        }

        if (receipt.MessageIds.Count == 0)
        {
            throw new RelayException(ErrorCode.InvalidRequest, "message_ids is empty");
        }

        if (receipt.MessageIds.Count > MaxMessageIds)
        {
            throw new RelayException(ErrorCode.InvalidRequest, $"message_ids has {receipt.MessageIds.Count} ids; at most {MaxMessageIds} per ReadReceipt");
        }

        for (int i = 0; i < receipt.MessageIds.Count; i++)
        {
            if (receipt.MessageIds[i].Length != 16)
            {
                throw new RelayException(ErrorCode.InvalidRequest, $"message_ids[{i}] must be 16 bytes, not {receipt.MessageIds[i].Length}");
            }
        }
    }

    /// <summary>Holds <paramref name="read"/> for <paramref name="sender"/> (memory now, the log soon); hands it over if a session attached meanwhile.</summary>
    private void Hold(PartnerInfo sender, Receipt read)
    {
        byte[] partner = sender.IdUtf8;
        byte[] body = read.ToByteArray();
        byte[] payload = new byte[10 + partner.Length + body.Length];
        ulong holdId;
        lock (_lock)
        {
            holdId = ++_lastHoldId;
            SortedDictionary<ulong, Receipt> held = HeldOf(sender.Id);
            held[holdId] = read;
            while (held.Count > MaxHeldPerPartner)
            {
                ulong oldest = held.Keys.First();
                held.Remove(oldest);
                InteropLog.ReadReceiptDropped(_logger, sender.Id);
            }
        }

        BinaryPrimitives.WriteUInt64LittleEndian(payload, holdId);
        BinaryPrimitives.WriteUInt16LittleEndian(payload.AsSpan(8), (ushort)partner.Length);
        partner.CopyTo(payload, 10);
        body.CopyTo(payload, 10 + partner.Length);
        _ = HoldDurablyAsync(sender, payload);
    }

    private async Task HoldDurablyAsync(PartnerInfo sender, byte[] payload)
    {
        await AppendAsync(InteropRecordTypes.ReadReceiptHeld, payload, "a held read receipt");

        // A session may have attached between the live attempt and the hold; the handed-over record follows the held one.
        SendHeldIfConnected(sender);
    }

    private void SendHeldIfConnected(PartnerInfo sender) => HandOver(sender, frame => SendLive(sender, frame));

    private async Task AppendAsync(byte type, byte[] payload, string what)
    {
        try
        {
            await _log.AppendAsync(type, payload);
        }
        catch (IOException ex)
        {
            InteropLog.InteropLogFailed(_logger, what, ex.Message);
        }
    }

    private SortedDictionary<ulong, Receipt> HeldOf(string partner)
    {
        if (!_heldByPartner.TryGetValue(partner, out var held))
        {
            _heldByPartner[partner] = held = [];
        }

        return held;
    }
}
