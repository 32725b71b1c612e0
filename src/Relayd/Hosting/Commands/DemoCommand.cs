using System.CommandLine;
using System.Diagnostics;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Security;

namespace Relayd.Hosting.Commands;

/// <summary>
/// <c>relayd demo</c>: a relay on loopback with a fresh dev PKI, two partner servers (alpha, beta) connected through
/// the client library over mutual TLS, text envelopes both ways with each one's fate, then a throughput figure.
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var count = new Option<int>("--count") { Description = "Envelopes in the throughput run", DefaultValueFactory = _ => 200_000 };
        var size = new Option<int>("--size") { Description = "Ciphertext bytes per envelope in the throughput run", DefaultValueFactory = _ => 1024 };
        var window = new Option<int>("--window") { Description = "Unacknowledged envelopes in flight in the throughput run", DefaultValueFactory = _ => 2048 };
        var command = new Command("demo", "Run a relay and two partners on loopback, show each envelope's fate and a throughput figure") { count, size, window };
        command.SetAction(async (parse, cancellationToken) =>
        {
            using ILoggerFactory logging = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning));
            var demo = new DemoRun(logging.CreateLogger("relayd"), Console.Out);
            bool ok = await demo.RunAsync(parse.GetValue(count), parse.GetValue(size), parse.GetValue(window), cancellationToken);
            return ok ? ExitCodes.Ok : ExitCodes.Failed;
        });
        return command;
    }
}

internal sealed partial class DemoRun(ILogger logger, TextWriter output)
{
    public async Task<bool> RunAsync(int count, int size, int window, CancellationToken cancellationToken)
    {
        string dir = Directory.CreateTempSubdirectory("relayd-demo-").FullName;
        try
        {
            var pki = new DevPki(dir);
            pki.Init();
            pki.IssuePartner("alpha");
            pki.IssuePartner("beta");
            var options = new RelayOptions
            {
                Listen = "127.0.0.1:0",
                RelayId = "relayd-demo",
                Tls = new TlsOptions { CertificatePath = pki.ServerCertPath, KeyPath = pki.ServerKeyPath, PartnerCaPath = pki.CaCertPath },
                Storage = new StorageOptions { Directory = Path.Combine(dir, "wal"), ReserveBytes = 64L * 1024 * 1024 },
                Media = new MediaOptions { SpoolDirectory = Path.Combine(dir, "spool") },
            };
            options.Partners.Add(new PartnerOptions { Id = "alpha" });
            options.Partners.Add(new PartnerOptions { Id = "beta" });

            // Its thousands of envelopes come from one user, which a user's 20/s would cut: every limit checked, none reached.
            options.Interop.UseBenchmarkRates();
            options.Validate();

            await using Relay server = RelayServerFactory.Create(options, logger);
            await server.StartAsync(cancellationToken);
            output.WriteLine($"relay listening on {server.LocalEndPoint} (TLS 1.3, client certificates from a fresh dev CA in {dir})");

            await using RelayClient alpha = await ConnectAsync(pki, "alpha", server.LocalEndPoint.Port, cancellationToken);
            await using RelayClient beta = await ConnectAsync(pki, "beta", server.LocalEndPoint.Port, cancellationToken);
            output.WriteLine($"partners connected: {alpha.PartnerId}, {beta.PartnerId}");

            // Opt-in is on by default ([interop] require_opt_in): the demo's users opt in first, as a partner's would.
            await OptInAsync(alpha, ["user-1", "user-2", "load"], cancellationToken);
            await OptInAsync(beta, ["user-1", "user-2", .. Users], cancellationToken);
            output.WriteLine($"users opted in (ConsentUpdate, acknowledged once durable): alpha user-1, user-2, load; beta user-1, user-2 and {Users.Length} load recipients");

            bool fatesOk = await ShowFatesAsync(alpha, beta, cancellationToken);
            fatesOk &= await ShowMediaFatesAsync(alpha, beta, cancellationToken);
            double rate = await MeasureThroughputAsync(alpha, beta, count, size, window, cancellationToken);
            output.WriteLine($"throughput: {rate:N0} envelopes/s acked and delivered ({count:N0} x {size} B, alpha -> beta, window {window}, each acked after fdatasync to the write-ahead log in {options.Storage.Directory}, mutual TLS on loopback)");

            await alpha.CloseAsync();
            await beta.CloseAsync();
            await server.StopAsync(cancellationToken);
            output.WriteLine(fatesOk ? "demo: OK" : "demo: FAILED");
            return fatesOk;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Grants every partner for <paramref name="users"/> of the partner behind <paramref name="client"/>.</summary>
    private static Task<ConsentAck> OptInAsync(RelayClient client, string[] users, CancellationToken cancellationToken) =>
        client.UpdateConsentAsync(users.Select(u => new ConsentChange { User = ByteString.CopyFromUtf8(u), Action = ConsentAction.ConsentGrant }), cancellationToken);

    private static Task<RelayClient> ConnectAsync(DevPki pki, string partner, int port, CancellationToken cancellationToken) =>
        RelayClient.ConnectAsync(
            new RelayClientOptions
            {
                Host = "localhost",
                Port = port,
                Tls = new() { ClientCertificate = pki.LoadPartner(partner), RelayRoots = [pki.LoadCa()] },
                Agent = "relayd-demo/" + partner,
            },
            cancellationToken);

    private async Task<bool> ShowFatesAsync(RelayClient alpha, RelayClient beta, CancellationToken cancellationToken)
    {
        output.WriteLine();
        output.WriteLine("message                           route           accepted        delivered       receipt");
        var messages = new (RelayClient From, RelayClient To, string Text)[]
        {
            (alpha, beta, "hello from alpha"),
            (alpha, beta, "second message"),
            (beta, alpha, "hi alpha, beta here"),
            (alpha, beta, "third, in order"),
            (beta, alpha, "bye"),
        };

        bool allOk = true;
        foreach ((RelayClient from, RelayClient to, string text) in messages)
        {
            // The relay never reads this: in real use it is Signal-protocol ciphertext.
            byte[] ciphertext = System.Text.Encoding.UTF8.GetBytes(text);
            Envelope envelope = NewEnvelope(from.PartnerId, "user-1", to.PartnerId, "user-2", ciphertext);
            string hex = Convert.ToHexString(envelope.MessageId.Span);
            string id = hex[..6] + "-" + hex[^5..]; // run prefix and counter: short, and unique in the table
            Ack ack = await from.SendAsync(envelope, cancellationToken);
            string accepted = DateTimeOffset.FromUnixTimeMilliseconds(ack.AcceptedAtMs).ToString("HH:mm:ss.fff");

            Deliver delivery = await to.Deliveries.ReadAsync(cancellationToken).AsTask().WaitAsync(TimeSpan.FromSeconds(10), cancellationToken);
            bool identical = delivery.Envelope.MessageId == envelope.MessageId && delivery.Envelope.Ciphertext.Span.SequenceEqual(ciphertext);
            await to.AcknowledgeAsync(delivery, cancellationToken);
            string delivered = DateTimeOffset.UtcNow.ToString("HH:mm:ss.fff") + (identical ? "" : " CORRUPT");

            Receipt receipt = await from.Receipts.ReadAsync(cancellationToken).AsTask().WaitAsync(TimeSpan.FromSeconds(10), cancellationToken);
            bool receiptOk = receipt.Status == ReceiptStatus.Delivered && receipt.MessageIds.Contains(envelope.MessageId);
            allOk &= identical && receiptOk;
            output.WriteLine($"{id} {Quote(text),-20} {from.PartnerId + " -> " + to.PartnerId,-15} {accepted,-15} {delivered,-15} {ProtoNames.Of(receipt.Status)}");
        }

        output.WriteLine();
        return allOk;
    }

    private static async Task<double> MeasureThroughputAsync(RelayClient sender, RelayClient recipient, int count, int size, int window, CancellationToken cancellationToken)
    {
        byte[] ciphertext = new byte[size];
        Random.Shared.NextBytes(ciphertext);
        ByteString payload = ByteString.CopyFrom(ciphertext);
        var receipts = Task.Run(() => DrainReceiptsAsync(sender, count, cancellationToken), cancellationToken);
        var consumer = Task.Run(() => recipient.ConsumeAsync(_ => { }, count, cancellationToken), cancellationToken);
        using var inFlight = new SemaphoreSlim(window);
        var stopwatch = Stopwatch.StartNew();
        for (int i = 0; i < count; i++)
        {
            await inFlight.WaitAsync(cancellationToken);
            Envelope envelope = NewEnvelope(sender.PartnerId, "load", recipient.PartnerId, Users[i % Users.Length], payload);
            _ = sender.SendAsync(envelope, cancellationToken).ContinueWith(
                (t, state) => ((SemaphoreSlim)state!).Release(), inFlight, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        await consumer.WaitAsync(TimeSpan.FromMinutes(2), cancellationToken);
        double seconds = stopwatch.Elapsed.TotalSeconds;
        await receipts.WaitAsync(TimeSpan.FromMinutes(1), cancellationToken);
        return count / seconds;
    }

    private static readonly string[] Users = [.. Enumerable.Range(0, 64).Select(i => "user-" + i)];

    private static async Task DrainReceiptsAsync(RelayClient sender, int count, CancellationToken cancellationToken)
    {
        int seen = 0;
        await foreach (Receipt receipt in sender.ReadReceiptsAsync(cancellationToken))
        {
            seen += receipt.MessageIds.Count;
            if (seen >= count)
            {
                return;
            }
        }
    }

    internal static Envelope NewEnvelope(string senderPartner, string senderUser, string recipientPartner, string recipientUser, ReadOnlySpan<byte> ciphertext) =>
        NewEnvelope(senderPartner, senderUser, recipientPartner, recipientUser, ByteString.CopyFrom(ciphertext));

    private static readonly long RunPrefix = BitConverter.ToInt64(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));
    private static long _messageCounter;

    /// <summary>A unique 16-byte id: a random prefix for this run and a counter (no syscall per id, unlike Guid.NewGuid).</summary>
    private static ByteString NextMessageId()
    {
        Span<byte> id = stackalloc byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(id, RunPrefix);
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(id[8..], Interlocked.Increment(ref _messageCounter));
        return ByteString.CopyFrom(id);
    }

    internal static Envelope NewEnvelope(string senderPartner, string senderUser, string recipientPartner, string recipientUser, ByteString ciphertext) => new()
    {
        MessageId = NextMessageId(),
        SenderPartner = senderPartner,
        SenderUser = ByteString.CopyFromUtf8(senderUser),
        RecipientPartner = recipientPartner,
        RecipientUser = ByteString.CopyFromUtf8(recipientUser),
        ContentKind = ContentKind.Text,
        Ciphertext = ciphertext,
        ClientTimestampMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
    };

    private static string Quote(string text) => "\"" + text + "\"";
}
