using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Google.Protobuf;
using Relayd.Protocol;
using Relayd.Protocol.V1;

namespace Relayd.LoadGen.Media;

/// <summary>
/// Text envelopes every 10 ms on the same two connections a blob travels over, timed from send to delivery at the
/// recipient: what a large transfer adds to text latency (chunks and envelopes share each connection).
/// </summary>
internal sealed class TextProbe(RelayClient sender, RelayClient recipient)
{
    private readonly ConcurrentDictionary<UInt128, long> _sent = new();
    private readonly ConcurrentQueue<double> _latenciesMs = new();
    private readonly long _prefix = Random.Shared.NextInt64();
    private long _counter;

    /// <summary>Consumes the recipient's deliveries until cancelled; run once, for the whole measurement.</summary>
    public Task ConsumeAsync(CancellationToken cancellationToken) => Task.Run(async () =>
    {
        try
        {
            await recipient.ConsumeAsync(
                d =>
                {
                    if (_sent.TryRemove(BinaryPrimitives.ReadUInt128BigEndian(d.Envelope.MessageId.Span), out long start))
                    {
                        _latenciesMs.Enqueue(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                    }
                },
                long.MaxValue,
                cancellationToken);
        }
        catch (Exception ex) when (ex is OperationCanceledException or RelayException)
        {
            // Done.
        }
    }, CancellationToken.None);

    /// <summary>Sends one envelope every 10 ms until <paramref name="stop"/> completes; returns "p50 / p99 / max ms (n)".</summary>
    public async Task<string> MeasureAsync(Task stop, CancellationToken cancellationToken)
    {
        _latenciesMs.Clear();
        while (!stop.IsCompleted)
        {
            byte[] id = new byte[16];
            BinaryPrimitives.WriteInt64BigEndian(id, _prefix);
            BinaryPrimitives.WriteInt64BigEndian(id.AsSpan(8), Interlocked.Increment(ref _counter));
            _sent[BinaryPrimitives.ReadUInt128BigEndian(id)] = Stopwatch.GetTimestamp();
            await sender.SendAsync(
                new Envelope
                {
                    MessageId = ByteString.CopyFrom(id),
                    SenderPartner = sender.PartnerId,
                    SenderUser = ByteString.CopyFromUtf8("user-0"),
                    RecipientPartner = recipient.PartnerId,
                    RecipientUser = ByteString.CopyFromUtf8("user-1"),
                    ContentKind = ContentKind.Text,
                    Ciphertext = ByteString.CopyFrom(new byte[256]),
                },
                cancellationToken);
            await Task.WhenAny(stop, Task.Delay(10, cancellationToken));
        }

        await Task.Delay(200, cancellationToken); // the last deliveries
        double[] sorted = [.. _latenciesMs.Order()];
        return sorted.Length == 0 ? "no deliveries"
            : string.Create(CultureInfo.InvariantCulture, $"p50 {At(sorted, 0.5):0.0} / p99 {At(sorted, 0.99):0.0} / max {sorted[^1]:0.0} ms ({sorted.Length} envelopes)");
    }

    private static double At(double[] sorted, double q) => sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))];
}
