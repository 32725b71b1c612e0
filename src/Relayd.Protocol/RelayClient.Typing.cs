using System.Threading.Channels;
using Google.Protobuf;
using Relayd.Protocol.V1;

namespace Relayd.Protocol;

/// <summary>
/// Typing notices (docs/protocol.md, "Typing"): ephemeral, sent without an answer, received only while connected with
/// <see cref="RelayClientOptions.AcceptsTyping"/>.
/// </summary>
public sealed partial class RelayClient
{
    /// <summary>Notices buffered for the application; when full the oldest goes (a stale notice is worthless).</summary>
    private const int TypingBuffer = 256;

    private readonly Channel<Typing> _typing = Channel.CreateBounded<Typing>(
        new BoundedChannelOptions(TypingBuffer) { SingleWriter = true, FullMode = BoundedChannelFullMode.DropOldest });

    /// <summary>
    /// Tells <paramref name="recipientPartner"/> that <paramref name="senderUser"/> of this partner started or stopped
    /// typing to <paramref name="recipientUser"/>. No answer: the relay drops it when the recipient cannot show it; a
    /// refusal (NOT_OPTED_IN, UNKNOWN_RECIPIENT_PARTNER, INVALID_REQUEST) reaches <see cref="RelayClientOptions.OnRelayError"/>.
    /// </summary>
    public ValueTask SendTypingAsync(ReadOnlyMemory<byte> senderUser, string recipientPartner, ReadOnlyMemory<byte> recipientUser, TypingState state, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(recipientPartner);
        if (_failure is { } failure)
        {
            return ValueTask.FromException(failure);
        }

        WriteInteropFrame(new Frame
        {
            Typing = new Typing
            {
                SenderPartner = PartnerId,
                SenderUser = ByteString.CopyFrom(senderUser.Span),
                RecipientPartner = recipientPartner,
                RecipientUser = ByteString.CopyFrom(recipientUser.Span),
                State = state,
            },
        });
        return ValueTask.CompletedTask;
    }

    /// <summary>Typing notices from other partners' users, with the relay's relayed_at_ms.</summary>
    public IAsyncEnumerable<Typing> ReadTypingAsync(CancellationToken cancellationToken = default) => _typing.Reader.ReadAllAsync(cancellationToken);

    private ValueTask OnTypingAsync(Typing typing, CancellationToken cancellationToken)
    {
        _typing.Writer.TryWrite(typing);
        return ValueTask.CompletedTask;
    }
}
