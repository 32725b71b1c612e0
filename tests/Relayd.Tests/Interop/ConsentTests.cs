using Google.Protobuf;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;
using static Relayd.Tests.Interop.ConsentUsers;

namespace Relayd.Tests.Interop;

/// <summary>
/// Opt-in over real TLS: with <c>[interop] require_opt_in</c> an envelope or a MediaOpen crosses only between two
/// users who both opted in to this pair of partners (ConsentUpdate), and one refusal, NOT_OPTED_IN, answers every case.
/// </summary>
public sealed class ConsentTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public ConsentTests(PkiFixture fixture) => _pki = fixture.Pki;

    private TestRelay StartWithOptIn(Action<RelayOptions>? configure = null) => TestRelay.Start(_pki, o =>
    {
        o.Interop.RequireOptIn = true;
        configure?.Invoke(o);
    });

    [Fact]
    public async Task Envelopes_are_refused_both_ways_until_both_users_opted_in()
    {
        await using TestRelay relay = StartWithOptIn();
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");

        // Nobody opted in.
        Assert.Equal(ErrorCode.NotOptedIn, await OutcomeAsync(alpha, Envelopes.New("alpha", "beta", toUser: "bob", fromUser: "alice")));

        // Only the recipient opted in: both directions still refused.
        await GrantAsync(beta, "bob");
        Assert.Equal(ErrorCode.NotOptedIn, await OutcomeAsync(alpha, Envelopes.New("alpha", "beta", toUser: "bob", fromUser: "alice")));
        Assert.Equal(ErrorCode.NotOptedIn, await OutcomeAsync(beta, Envelopes.New("beta", "alpha", toUser: "alice", fromUser: "bob")));

        // Only the sender opted in (another pair): refused.
        await GrantAsync(alpha, "alice");
        Assert.Equal(ErrorCode.NotOptedIn, await OutcomeAsync(alpha, Envelopes.New("alpha", "beta", toUser: "bert", fromUser: "alice")));
        Assert.Equal(ErrorCode.NotOptedIn, await OutcomeAsync(beta, Envelopes.New("beta", "alpha", toUser: "alice", fromUser: "bert")));

        // Both: accepted and delivered, both ways.
        Envelope there = Envelopes.New("alpha", "beta", toUser: "bob", fromUser: "alice");
        await Envelopes.AcceptedAsync(alpha, there);
        Envelope back = Envelopes.New("beta", "alpha", toUser: "alice", fromUser: "bob");
        await Envelopes.AcceptedAsync(beta, back);
        Assert.Equal(there.MessageId, (await beta.Deliveries.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within()).Envelope.MessageId);
        Assert.Equal(back.MessageId, (await alpha.Deliveries.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within()).Envelope.MessageId);

        // A revoke is in force once acknowledged.
        await RevokeAsync(alpha, "alice");
        Assert.Equal(ErrorCode.NotOptedIn, await OutcomeAsync(alpha, Envelopes.New("alpha", "beta", toUser: "bob", fromUser: "alice")));
        Assert.Equal(ErrorCode.NotOptedIn, await OutcomeAsync(beta, Envelopes.New("beta", "alpha", toUser: "alice", fromUser: "bob")));
    }

    [Fact]
    public async Task A_grant_scoped_to_one_partner_admits_that_partner_only()
    {
        await using TestRelay relay = StartWithOptIn();
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        await using RelayClient gamma = await relay.ConnectAsync("gamma");
        await alpha.UpdateConsentAsync([Grant("alice", scope: "beta")], TestContext.Current.CancellationToken).Within();
        await GrantAsync(beta, "bob");
        await GrantAsync(gamma, "carol");

        Assert.Equal(ErrorCode.Unspecified, await OutcomeAsync(alpha, Envelopes.New("alpha", "beta", toUser: "bob", fromUser: "alice")));
        Assert.Equal(ErrorCode.NotOptedIn, await OutcomeAsync(alpha, Envelopes.New("alpha", "gamma", toUser: "carol", fromUser: "alice")));
        Assert.Equal(ErrorCode.NotOptedIn, await OutcomeAsync(gamma, Envelopes.New("gamma", "alpha", toUser: "alice", fromUser: "carol")));

        // All partners but one: a grant to all, then a revoke for gamma.
        await gamma.UpdateConsentAsync([Grant("carol"), Revoke("carol", scope: "alpha")], TestContext.Current.CancellationToken).Within();
        await GrantAsync(alpha, "alice");
        Assert.Equal(ErrorCode.NotOptedIn, await OutcomeAsync(alpha, Envelopes.New("alpha", "gamma", toUser: "carol", fromUser: "alice")));
        Assert.Equal(ErrorCode.Unspecified, await OutcomeAsync(beta, Envelopes.New("beta", "gamma", toUser: "carol", fromUser: "bob")));
    }

    [Fact]
    public async Task NOT_OPTED_IN_is_byte_identical_for_an_unknown_user_and_one_who_is_known_but_not_opted_in()
    {
        await using TestRelay relay = StartWithOptIn();
        await using RelayClient beta = await relay.ConnectAsync("beta");
        await using RelayClient alphaClient = await relay.ConnectAsync("alpha");
        await GrantAsync(alphaClient, "alice");
        await GrantAsync(beta, "revoked-bob");
        await RevokeAsync(beta, "revoked-bob");
        await beta.UpdateConsentAsync([Grant("gamma-only-bob", scope: "gamma")], TestContext.Current.CancellationToken).Within();

        await using RawPartnerConnection alpha = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("alpha"), _pki.Ca);
        await alpha.SendHelloAsync();
        Assert.NotNull((await alpha.ReadFrameAsync())?.Welcome);

        var frames = new List<byte[]>();
        foreach (string user in (string[])["nobody-ever", "revoked-bob", "gamma-only-bob"])
        {
            Envelope envelope = Envelopes.New("alpha", "beta", toUser: user, fromUser: "alice");
            await alpha.SendAsync(new Frame { Envelope = envelope });
            Frame? answer = await alpha.ReadFrameAsync();
            Assert.NotNull(answer);
            Assert.Equal(ErrorCode.NotOptedIn, answer.Error.Code);
            Assert.Equal(envelope.MessageId, answer.Error.MessageId);
            answer.Error.MessageId = ByteString.Empty; // the one field that differs
            frames.Add(answer.ToByteArray());
        }

        Assert.Equal(frames[0], frames[1]);
        Assert.Equal(frames[0], frames[2]);

        // The sender side answers the same way too.
        Envelope fromUnknown = Envelopes.New("alpha", "beta", toUser: "revoked-bob", fromUser: "nobody-either");
        await alpha.SendAsync(new Frame { Envelope = fromUnknown });
        Frame? senderSide = await alpha.ReadFrameAsync();
        Assert.NotNull(senderSide);
        senderSide.Error.MessageId = ByteString.Empty;
        Assert.Equal(frames[0], senderSide.ToByteArray());
    }

    [Fact]
    public async Task A_MediaOpen_is_refused_with_NOT_OPTED_IN_until_both_users_opted_in()
    {
        await using TestRelay relay = StartWithOptIn();
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        using var content = new MemoryStream(Envelopes.RandomCiphertext(64 * 1024));
        Task<MediaComplete> Send()
        {
            MediaOpen request = MediaBlobs.Open("alpha", "beta", content);
            content.Position = 0;
            return alpha.SendMediaAsync(request, content, TestContext.Current.CancellationToken);
        }

        RelayException refused = await Envelopes.RefusedAsync(() => Send().Within(30));
        Assert.Equal(ErrorCode.NotOptedIn, refused.Code);

        await GrantAsync(alpha, "sender-1");
        refused = await Envelopes.RefusedAsync(() => Send().Within(30));
        Assert.Equal(ErrorCode.NotOptedIn, refused.Code);

        await GrantAsync(beta, "user-1");
        Task<MediaComplete> sent = Send();
        (MediaOpen open, long length, _) = await MediaBlobs.ReceiveAsync(beta);
        await sent.Within(30);
        Assert.Equal(content.Length, length);
        Assert.Equal("user-1", open.RecipientUser.ToStringUtf8());
    }

    [Fact]
    public async Task A_revoke_while_1000_envelopes_wait_for_an_offline_recipient_delivers_none_and_refuses_all_1000_to_the_sender()
    {
        const int count = 1000;
        await using TestRelay relay = StartWithOptIn();
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using (RelayClient beta = await relay.ConnectAsync("beta"))
        {
            await GrantAsync(beta, "bob");
        }

        await GrantAsync(alpha, "alice");
        var sent = new HashSet<ByteString>();
        var acks = new List<Task<Ack>>();
        for (int i = 0; i < count; i++)
        {
            Envelope envelope = Envelopes.New("alpha", "beta", toUser: "bob", fromUser: "alice");
            sent.Add(envelope.MessageId);
            acks.Add(alpha.SendAsync(envelope));
        }

        await Task.WhenAll(acks).Within(30);
        await RevokeAsync(alpha, "alice"); // the sender user revokes while everything waits for beta

        // Settled at the revoke, while beta is still away.
        var refused = new HashSet<ByteString>();
        while (refused.Count < count)
        {
            Receipt receipt = await alpha.Receipts.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within(30);
            Assert.Equal(ReceiptStatus.Refused, receipt.Status);
            Assert.Equal(ErrorCode.NotOptedIn, receipt.Code);
            foreach (ByteString id in receipt.MessageIds)
            {
                Assert.Contains(id, sent);
                refused.Add(id);
            }
        }

        Assert.Equal(count, refused.Count);
        await using RelayClient back = await relay.ConnectAsync("beta");
        Assert.True(await Envelopes.StaysEmpty(back.Deliveries, 500), "an envelope of a revoked user was delivered");
    }

    [Fact]
    public async Task A_recipient_who_revokes_gets_nothing_more_and_every_envelope_not_yet_acknowledged_is_refused_to_its_sender()
    {
        const int count = 1000;
        await using TestRelay relay = StartWithOptIn(o => o.Limits.DeliveryWindowEnvelopes = 10);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await GrantAsync(alpha, "alice");
        await using (RelayClient grant = await relay.ConnectAsync("beta"))
        {
            await GrantAsync(grant, "bob");
        }

        var acks = new List<Task<Ack>>();
        for (int i = 0; i < count; i++)
        {
            acks.Add(alpha.SendAsync(Envelopes.New("alpha", "beta", toUser: "bob", fromUser: "alice")));
        }

        await Task.WhenAll(acks).Within(30);

        // Bob's provider connects (and is sent one window, which it does not acknowledge), then bob revokes.
        int handedOver;
        await using (RelayClient beta = await relay.ConnectAsync("beta"))
        {
            await beta.Deliveries.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within();
            await RevokeAsync(beta, "bob");
            handedOver = 1;
            while (beta.Deliveries.TryRead(out _))
            {
                handedOver++;
            }

            Assert.InRange(handedOver, 1, 10);
        }

        await using RelayClient again = await relay.ConnectAsync("beta");
        int refused = 0;
        while (refused < count)
        {
            Receipt receipt = await alpha.Receipts.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within(30);
            Assert.Equal(ReceiptStatus.Refused, receipt.Status);
            Assert.Equal(ErrorCode.NotOptedIn, receipt.Code);
            refused += receipt.MessageIds.Count;
        }

        Assert.Equal(count, refused);
        Assert.True(await Envelopes.StaysEmpty(again.Deliveries, 500), "an envelope for a user who revoked was delivered");
    }

    [Fact]
    public async Task A_bad_ConsentUpdate_is_refused_with_its_request_id_naming_why_and_changes_nothing()
    {
        await using TestRelay relay = StartWithOptIn(o => o.Interop.MaxConsentChanges = 3);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        await GrantAsync(beta, "bob");

        (ConsentChange[] Changes, ErrorCode Code, string Detail)[] cases =
        [
            ([], ErrorCode.InvalidRequest, "at least one change"),
            ([Grant("")], ErrorCode.InvalidRequest, "change 0: user is empty"),
            ([Grant("alice"), new ConsentChange { User = ByteString.CopyFromUtf8("x") }], ErrorCode.InvalidRequest, "change 1: action must be CONSENT_GRANT or CONSENT_REVOKE"),
            ([Grant("alice", scope: "omega")], ErrorCode.UnknownRecipientPartner, "scope_partner 'omega' is not an approved partner"),
            ([Grant("a"), Grant("b"), Grant("c"), Grant("alice")], ErrorCode.InvalidRequest, "at most 3 changes"),
            ([Grant(new string('u', 257))], ErrorCode.InvalidRequest, "257 bytes"),
        ];
        foreach ((ConsentChange[] changes, ErrorCode code, string detail) in cases)
        {
            RelayException refused = await Envelopes.RefusedAsync(() => alpha.UpdateConsentAsync(changes, TestContext.Current.CancellationToken).Within());
            Assert.Equal(code, refused.Code);
            Assert.Contains(detail, refused.Message, StringComparison.Ordinal);
        }

        // None of them put alice in force, and the session is still up.
        Assert.Equal(ErrorCode.NotOptedIn, await OutcomeAsync(alpha, Envelopes.New("alpha", "beta", toUser: "bob", fromUser: "alice")));
        await GrantAsync(alpha, "alice");
        Assert.Equal(ErrorCode.Unspecified, await OutcomeAsync(alpha, Envelopes.New("alpha", "beta", toUser: "bob", fromUser: "alice")));
    }

    [Fact]
    public async Task The_ConsentAck_waits_for_the_consent_log_s_fdatasync()
    {
        var disk = new HeldDisk();
        await using TestRelay relay = StartWithOptIn(o => o.Storage.FileSync = disk);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        long syncsBefore = disk.Syncs;

        disk.Hold();
        Task<ConsentAck> ack = alpha.UpdateConsentAsync([Grant("alice")], TestContext.Current.CancellationToken);
        await disk.Waiting.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken); // the log writer is in fdatasync
        Assert.False(ack.IsCompleted, "ConsentAck before the consent log's fdatasync returned");

        disk.Release();
        ConsentAck answered = await ack.Within();
        Assert.Equal(1u, answered.Changes);
        Assert.True(disk.Syncs > syncsBefore);
    }
}
