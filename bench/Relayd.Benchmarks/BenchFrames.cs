using Google.Protobuf;
using Relayd.Protocol.V1;

namespace Relayd.Benchmarks;

/// <summary>The envelope the benchmarks send: alpha's user alice to beta's <c>user-N</c>, a zero message id to overwrite.</summary>
internal static class BenchFrames
{
    public static Frame AliceToBeta(int recipientUser, byte[] ciphertext) => new()
    {
        Envelope = new Envelope
        {
            MessageId = ByteString.CopyFrom(new byte[16]),
            SenderPartner = "alpha",
            SenderUser = ByteString.CopyFromUtf8("alice"),
            RecipientPartner = "beta",
            RecipientUser = ByteString.CopyFromUtf8("user-" + recipientUser),
            ContentKind = ContentKind.Text,
            Ciphertext = ByteString.CopyFrom(ciphertext),
            ClientTimestampMs = 1_765_000_000_000,
        },
    };
}
