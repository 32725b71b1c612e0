using System.Threading.Channels;
using Google.Protobuf;
using Relayd.Protocol;
using Relayd.Protocol.V1;

namespace Relayd.Tests.Infrastructure;

/// <summary>Envelope builders and small waits shared by the functional tests.</summary>
internal static class Envelopes
{
    public static Envelope New(string from, string to, string toUser = "user-1", byte[]? ciphertext = null, string fromUser = "sender-1") => new()
    {
        MessageId = ByteString.CopyFrom(Guid.NewGuid().ToByteArray()),
        SenderPartner = from,
        SenderUser = ByteString.CopyFromUtf8(fromUser),
        RecipientPartner = to,
        RecipientUser = ByteString.CopyFromUtf8(toUser),
        ContentKind = ContentKind.Text,
        Ciphertext = ByteString.CopyFrom(ciphertext ?? RandomCiphertext(64)),
        ClientTimestampMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
    };

    public static byte[] RandomCiphertext(int length)
    {
        byte[] bytes = new byte[length];
        Random.Shared.NextBytes(bytes);
        return bytes;
    }

    public static async Task<T> Within<T>(this ValueTask<T> task, int seconds = 10) =>
        await task.AsTask().WaitAsync(TimeSpan.FromSeconds(seconds), TestContext.Current.CancellationToken);

    public static async Task<T> Within<T>(this Task<T> task, int seconds = 10) =>
        await task.WaitAsync(TimeSpan.FromSeconds(seconds), TestContext.Current.CancellationToken);

    public static async Task Within(this Task task, int seconds = 10) =>
        await task.WaitAsync(TimeSpan.FromSeconds(seconds), TestContext.Current.CancellationToken);

    /// <summary>Sends <paramref name="sent"/> and checks its Ack: this message, accepted now, not a duplicate.</summary>
    public static async Task<Ack> AcceptedAsync(RelayClient client, Envelope sent)
    {
        long sentAtMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        Ack ack = await client.SendAsync(sent).Within();

        Assert.Equal(sent.MessageId, ack.MessageId);
        Assert.False(ack.Duplicate);
        Assert.InRange(ack.AcceptedAtMs, sentAtMs, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        return ack;
    }

    public static async Task<RelayException> RefusedAsync(Func<Task> action)
    {
        try
        {
            await action();
        }
        catch (RelayException ex)
        {
            return ex;
        }

        throw new Xunit.Sdk.XunitException("expected a RelayException, but the call succeeded");
    }

    /// <summary>True when nothing arrives on <paramref name="reader"/> within <paramref name="milliseconds"/>.</summary>
    public static async Task<bool> StaysEmpty<T>(ChannelReader<T> reader, int milliseconds)
    {
        using var wait = new CancellationTokenSource(milliseconds);
        try
        {
            await reader.WaitToReadAsync(wait.Token);
            return false;
        }
        catch (OperationCanceledException)
        {
            return true;
        }
    }
}
