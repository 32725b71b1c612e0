using System.Collections.Concurrent;
using System.Text;
using Google.Protobuf;
using Relayd.Interop.Typing;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Interop;

/// <summary>
/// Typing notices: handed live to a connected recipient that shows them, stamped by the relay; dropped (the sender is
/// not told) when nobody can show them; never on disk; stale after 10 s.
/// </summary>
public sealed class TypingTests : IClassFixture<PkiFixture>
{
    private static readonly byte[] Alice = "alice"u8.ToArray();
    private static readonly byte[] Bob = "bob"u8.ToArray();
    private readonly TestPki _pki;

    public TypingTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task A_notice_reaches_a_connected_recipient_that_accepts_typing_stamped_with_the_relay_s_clock()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient beta = await relay.ConnectAsync("beta", o => o with { AcceptsTyping = true });
        await using RelayClient alpha = await relay.ConnectAsync("alpha");

        long before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await alpha.SendTypingAsync(Alice, "beta", Bob, TypingState.TypingStarted, TestContext.Current.CancellationToken);
        Typing typing = await FirstTypingAsync(beta).Within();
        long after = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

        Assert.Equal("alpha", typing.SenderPartner);
        Assert.Equal(Alice, typing.SenderUser.ToByteArray());
        Assert.Equal("beta", typing.RecipientPartner);
        Assert.Equal(Bob, typing.RecipientUser.ToByteArray());
        Assert.Equal(TypingState.TypingStarted, typing.State);
        Assert.InRange(typing.RelayedAtMs, before, after);
        Assert.Equal(1, relay.Server.Typing!.Delivered);
    }

    [Fact]
    public async Task A_notice_for_a_recipient_that_does_not_accept_typing_is_dropped_and_the_sender_is_not_told()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient beta = await relay.ConnectAsync("beta", o => o with { AcceptsTyping = false });
        var errors = new ConcurrentQueue<RelayException>();
        await using RelayClient alpha = await relay.ConnectAsync("alpha", o => o with { OnRelayError = errors.Enqueue });

        await alpha.SendTypingAsync(Alice, "beta", Bob, TypingState.TypingStarted, TestContext.Current.CancellationToken);
        await alpha.GetCapabilitiesAsync("beta", TestContext.Current.CancellationToken).Within(); // handled after the notice
        await alpha.SendAsync(Envelopes.New("alpha", "beta")).Within();
        await beta.Deliveries.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within(); // beta's connection is live

        Assert.Equal(1, relay.Server.Typing!.Dropped);
        Assert.Equal(0, relay.Server.Typing.Delivered);
        Assert.Empty(errors);
        Assert.False(await ArrivesWithinAsync(beta, milliseconds: 300), "beta did not declare accepts_typing, yet got a notice");
    }

    [Fact]
    public async Task A_notice_for_an_offline_recipient_is_dropped_and_the_sender_is_not_told()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        var errors = new ConcurrentQueue<RelayException>();
        await using RelayClient alpha = await relay.ConnectAsync("alpha", o => o with { OnRelayError = errors.Enqueue });

        await alpha.SendTypingAsync(Alice, "beta", Bob, TypingState.TypingStopped, TestContext.Current.CancellationToken);
        await alpha.GetCapabilitiesAsync("beta", TestContext.Current.CancellationToken).Within(); // handled after the notice

        Assert.Equal(1, relay.Server.Typing!.Dropped);
        Assert.Empty(errors);

        // Nothing is held for later: beta connecting now gets nothing.
        await using RelayClient beta = await relay.ConnectAsync("beta", o => o with { AcceptsTyping = true });
        Assert.False(await ArrivesWithinAsync(beta, milliseconds: 300), "a notice sent while beta was offline was delivered later");
    }

    [Fact]
    public async Task A_refused_notice_gets_a_non_fatal_Error_naming_why()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        var errors = new ConcurrentQueue<RelayException>();
        await using RelayClient alpha = await relay.ConnectAsync("alpha", o => o with { OnRelayError = errors.Enqueue });

        await alpha.SendTypingAsync(Alice, "nobody", Bob, TypingState.TypingStarted, TestContext.Current.CancellationToken);
        await alpha.SendTypingAsync(Alice, "beta", ReadOnlyMemory<byte>.Empty, TypingState.TypingStarted, TestContext.Current.CancellationToken);
        await KeyBundleTests.WaitUntilAsync(() => errors.Count == 2, "the refusals did not arrive");
        await alpha.SendAsync(Envelopes.New("alpha", "beta")).Within(); // the connection is still open

        RelayException[] refused = [.. errors];
        Assert.Equal(ErrorCode.UnknownRecipientPartner, refused[0].Code);
        Assert.Contains("nobody", refused[0].Detail, StringComparison.Ordinal);
        Assert.Equal(ErrorCode.InvalidRequest, refused[1].Code);
        Assert.Contains("recipient_user", refused[1].Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_notice_is_fresh_for_10_seconds_after_the_relay_received_it_and_a_stale_one_is_counted_as_dropped()
    {
        var options = new RelayOptions();
        options.Partners.Add(new PartnerOptions { Id = "alpha" });
        var route = new TypingRelay(new Relayd.Routing.PartnerDirectory(options), Relayd.Admission.InteropPolicy.None, TimeProvider.System);
        var typing = new Typing { RelayedAtMs = 1_000_000 };

        Assert.True(TypingRelay.IsFresh(1_000_000, 1_010_000));
        Assert.False(TypingRelay.IsFresh(1_000_000, 1_010_001));
        Assert.True(route.StillFresh(typing, 1_009_999));
        Assert.Equal(0, route.Dropped);
        Assert.False(route.StillFresh(typing, 1_010_001));
        Assert.Equal(1, route.Dropped);
    }

    [Fact]
    public async Task A_typing_notice_never_reaches_the_WAL_the_spool_or_the_log()
    {
        string spool = Directory.CreateTempSubdirectory("relayd-live-spool-").FullName;
        try
        {
            await using var relay = new RelaydProcess(_pki, tables: $"""
                [media]
                spool_dir = "{spool}"
                """);
            await relay.StartAsync();
            await using RelayClient beta = await RelayClient.ConnectAsync(relay.ClientOptions("beta") with { AcceptsTyping = true }, TestContext.Current.CancellationToken);
            await using RelayClient alpha = await relay.ConnectAsync("alpha");
            string sender = "typing-sender-" + Guid.NewGuid().ToString("N");
            string recipient = "typing-recipient-" + Guid.NewGuid().ToString("N");

            await alpha.SendTypingAsync(Encoding.UTF8.GetBytes(sender), "beta", Encoding.UTF8.GetBytes(recipient), TypingState.TypingStarted, TestContext.Current.CancellationToken);
            Typing typing = await FirstTypingAsync(beta).Within();
            await alpha.SendAsync(Envelopes.New("alpha", "beta")).Within();
            await relay.TerminateAsync();

            Assert.Equal(recipient, typing.RecipientUser.ToStringUtf8());
            LiveMarkers.AssertNowhere(sender, relay, spool);
            LiveMarkers.AssertNowhere(recipient, relay, spool);
        }
        finally
        {
            Directory.Delete(spool, recursive: true);
        }
    }

    [Fact]
    public async Task Protoc_encoded_Typing_is_delivered_and_decodes_with_protoc_and_a_forged_sender_is_refused()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RawPartnerConnection beta = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("beta"), _pki.Ca);
        await ProtocFrames.SendAsync(beta, "hello { versions: PROTOCOL_VERSION_1 accepts_typing: true }");
        await ProtocFrames.ReceiveAsync(beta);
        await using RawPartnerConnection alpha = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("alpha"), _pki.Ca);
        await ProtocFrames.SendAsync(alpha, "hello { versions: PROTOCOL_VERSION_1 }");
        await ProtocFrames.ReceiveAsync(alpha);

        await ProtocFrames.SendAsync(alpha, """
            typing { sender_partner: "alpha" sender_user: "alice" recipient_partner: "beta" recipient_user: "bob" state: TYPING_STARTED }
            """);
        string delivered = await ProtocFrames.ReceiveAsync(beta);
        await ProtocFrames.SendAsync(alpha, """
            typing { sender_partner: "gamma" sender_user: "alice" recipient_partner: "beta" recipient_user: "bob" state: TYPING_STARTED }
            """);
        string refused = await ProtocFrames.ReceiveAsync(alpha);

        Assert.Contains("typing {", delivered, StringComparison.Ordinal);
        Assert.Contains("sender_user: \"alice\"", delivered, StringComparison.Ordinal);
        Assert.Contains("state: TYPING_STARTED", delivered, StringComparison.Ordinal);
        Assert.Contains("relayed_at_ms: ", delivered, StringComparison.Ordinal);
        Assert.Contains("code: SENDER_MISMATCH", refused, StringComparison.Ordinal);
        Assert.DoesNotContain("fatal: true", refused, StringComparison.Ordinal);
    }

    private static async Task<Typing> FirstTypingAsync(RelayClient recipient)
    {
        await foreach (Typing typing in recipient.ReadTypingAsync(TestContext.Current.CancellationToken))
        {
            return typing;
        }

        throw new Xunit.Sdk.XunitException("the connection ended without a typing notice");
    }

    private static async Task<bool> ArrivesWithinAsync(RelayClient recipient, int milliseconds)
    {
        using var window = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        window.CancelAfter(milliseconds);
        try
        {
            await foreach (Typing _ in recipient.ReadTypingAsync(window.Token))
            {
                return true;
            }
        }
        catch (OperationCanceledException) when (window.IsCancellationRequested)
        {
        }

        return false;
    }
}
