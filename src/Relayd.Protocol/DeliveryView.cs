using System.Buffers;
using System.Text;
using Google.Protobuf;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;

namespace Relayd.Protocol;

/// <summary>Stores one delivery (copy what is kept: the view's bytes are valid only during the call).</summary>
public delegate void DeliveryHandler(in DeliveryView delivery);

/// <summary>
/// One delivery as <see cref="RelayClient.ConsumeInPlaceAsync"/> hands it over: its fields are slices of the
/// connection's input buffer, valid only during the handler's call. Reading a delivery this way copies nothing and
/// allocates nothing; <see cref="SenderPartner"/>, <see cref="RecipientPartner"/> and <see cref="ToDeliver"/>
/// allocate when called.
/// </summary>
public readonly ref struct DeliveryView
{
    private readonly ReadOnlySequence<byte> _frame;
    private readonly EnvelopeHeader _fields;
    private readonly Deliver? _parsed;

    internal DeliveryView(in ReadOnlySequence<byte> frame, ulong deliveryId, long acceptedAtMs, in EnvelopeHeader fields)
    {
        _frame = frame;
        _fields = fields;
        DeliveryId = deliveryId;
        AcceptedAtMs = acceptedAtMs;
    }

    // A frame in another layout, read by the generated parser.
    internal DeliveryView(Deliver parsed)
    {
        _parsed = parsed;
        DeliveryId = parsed.DeliveryId;
        AcceptedAtMs = parsed.AcceptedAtMs;
    }

    /// <summary>Echo it in a DeliveryAck (<see cref="RelayClient.ConsumeInPlaceAsync"/> does).</summary>
    public ulong DeliveryId { get; }

    /// <summary>When the relay accepted the envelope (Unix ms).</summary>
    public long AcceptedAtMs { get; }

    /// <summary>The sender's 16-byte message id.</summary>
    public ReadOnlySequence<byte> MessageId => _parsed is null ? Slice(_fields.MessageIdSlice) : Bytes(_parsed.Envelope?.MessageId);

    /// <summary>The sending partner's id (allocates a string).</summary>
    public string SenderPartner => _parsed is null ? Text(_fields.SenderPartner) : _parsed.Envelope?.SenderPartner ?? "";

    /// <summary>Opaque to the relay.</summary>
    public ReadOnlySequence<byte> SenderUser => _parsed is null ? Slice(_fields.SenderUser) : Bytes(_parsed.Envelope?.SenderUser);

    /// <summary>This partner's id as the sender wrote it (allocates a string).</summary>
    public string RecipientPartner => _parsed is null ? Text(_fields.RecipientPartner) : _parsed.Envelope?.RecipientPartner ?? "";

    /// <summary>Opaque to the relay.</summary>
    public ReadOnlySequence<byte> RecipientUser => _parsed is null ? Slice(_fields.RecipientUser) : Bytes(_parsed.Envelope?.RecipientUser);

    public ContentKind ContentKind => _parsed is null ? (ContentKind)_fields.ContentKind : _parsed.Envelope?.ContentKind ?? ContentKind.Unspecified;

    /// <summary>End-to-end encrypted; the relay never read it.</summary>
    public ReadOnlySequence<byte> Ciphertext => _parsed is null ? Slice(_fields.Ciphertext) : Bytes(_parsed.Envelope?.Ciphertext);

    public long ClientTimestampMs => _parsed is null ? _fields.ClientTimestampMs : _parsed.Envelope?.ClientTimestampMs ?? 0;

    public long ExpiresAtMs => _parsed is null ? _fields.ExpiresAtMs : _parsed.Envelope?.ExpiresAtMs ?? 0;

    /// <summary>The delivery as a message of its own (a copy, unknown fields included), to keep beyond the call.</summary>
    public Deliver ToDeliver() => _parsed?.Clone() ?? new Deliver
    {
        DeliveryId = DeliveryId,
        AcceptedAtMs = AcceptedAtMs,
        Envelope = Envelope.Parser.ParseFrom(Slice(_fields.Envelope)),
    };

    private ReadOnlySequence<byte> Slice(FieldSlice field) => _frame.Slice(field.Offset, field.Length);

    private string Text(FieldSlice field) => Encoding.UTF8.GetString(Slice(field));

    private static ReadOnlySequence<byte> Bytes(ByteString? bytes) => bytes is null ? default : new ReadOnlySequence<byte>(bytes.Memory);
}
