using System.Buffers.Binary;
using System.Security.Cryptography;
using CsCheck;
using Google.Protobuf;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Support.Evidence;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Support.Evidence;

/// <summary>
/// Signed delivery evidence end to end over real TLS: alpha sends to beta, beta acknowledges, both fetch the relay's
/// proofs and check them with the Welcome key, with the openssl binary, with an independent fold of the audit path and
/// with <c>relayd evidence verify</c>; a partner that is neither gets the bytes of an unknown id.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class EvidenceEndToEndTests : IClassFixture<PkiFixture>, IDisposable
{
    private readonly TestPki _pki;
    private readonly string _dir = Directory.CreateTempSubdirectory("relayd-evidence-e2e-").FullName;

    public EvidenceEndToEndTests(PkiFixture fixture) => _pki = fixture.Pki;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string NewKey(out EvidenceKey key)
    {
        string path = Path.Combine(_dir, $"evidence-{Guid.NewGuid():N}.key");
        key = EvidenceKey.CreateFile(path);
        return path;
    }

    private TestRelay StartRelay(string keyPath, string? walDirectory = null) => TestRelay.Start(_pki, options =>
    {
        options.Evidence.KeyPath = keyPath;
        options.Evidence.SignInterval = TimeSpan.FromMilliseconds(50);
        if (walDirectory is not null)
        {
            options.Storage.Directory = walDirectory;
        }
    });

    /// <summary>Asks until the relay's answer has <paramref name="count"/> proofs (a statement is signed within sign_interval).</summary>
    private static async Task<EvidenceReply> ProofsAsync(RelayClient client, string sender, ByteString messageId, int count)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (true)
        {
            EvidenceReply reply = await client.EvidenceAsync(sender, messageId.Memory).Within();
            if (reply.Proofs.Count >= count && reply.RetryAfterMs == 0)
            {
                return reply;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(Math.Max(reply.RetryAfterMs, 20)), deadline.Token);
        }
    }

    private static async Task<(Envelope Sent, Ack Ack, Deliver Delivered)> SendAndAcknowledgeAsync(RelayClient alpha, RelayClient beta)
    {
        Envelope sent = Envelopes.New("alpha", "beta", toUser: "bob", fromUser: "alice", ciphertext: Envelopes.RandomCiphertext(1024));
        Ack ack = await Envelopes.AcceptedAsync(alpha, sent);
        Deliver delivered = await beta.Deliveries.ReadAsync().Within();
        await beta.AcknowledgeAsync(delivered);
        await alpha.Receipts.ReadAsync().Within();
        return (sent, ack, delivered);
    }

    // RFC 9162 2.1.3.2 written out again, apart from the relay's MerkleTree: what docs/evidence.md shows in Python.
    private static bool FoldsToRoot(EvidenceProof proof, byte[] root)
    {
        byte[] r = SHA256.HashData([0x00, .. proof.Statement.Span]);
        ulong fn = proof.LeafIndex, sn = proof.TreeSize - 1;
        foreach (ByteString p in proof.AuditPath)
        {
            if (sn == 0)
            {
                return false;
            }

            if ((fn & 1) == 1 || fn == sn)
            {
                r = SHA256.HashData([0x01, .. p.Span, .. r]);
                while ((fn & 1) == 0 && fn != 0)
                {
                    fn >>= 1;
                    sn >>= 1;
                }
            }
            else
            {
                r = SHA256.HashData([0x01, .. r, .. p.Span]);
            }

            fn >>= 1;
            sn >>= 1;
        }

        return sn == 0 && r.AsSpan().SequenceEqual(root);
    }

    [Fact]
    public async Task A_delivered_message_has_accepted_and_delivery_proofs_both_partners_verify_with_the_Welcome_key_openssl_the_path_and_the_CLI()
    {
        string keyPath = NewKey(out EvidenceKey key);
        await using TestRelay relay = StartRelay(keyPath);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        byte[] welcomeKey = alpha.Welcome.EvidencePublicKey.ToByteArray();
        Assert.Equal(key.PublicKey, welcomeKey);

        (Envelope sent, Ack ack, Deliver delivered) = await SendAndAcknowledgeAsync(alpha, beta);
        EvidenceReply forAlpha = await ProofsAsync(alpha, "alpha", sent.MessageId, 2);
        EvidenceReply forBeta = await ProofsAsync(beta, "alpha", sent.MessageId, 2);

        foreach (EvidenceReply reply in (EvidenceReply[])[forAlpha, forBeta])
        {
            Assert.Equal(2, reply.Proofs.Count);
            foreach (EvidenceProof proof in reply.Proofs)
            {
                Assert.Null(EvidenceVerifier.Verify(proof, welcomeKey));
                TreeHeadFields head = EvidenceLayouts.ParseTreeHead(proof.TreeHead.Span, out _)!;
                Assert.True(FoldsToRoot(proof, head.RootHash));
                Assert.Equal("relayd-test", head.RelayId);
            }
        }

        UInt128 id = BinaryPrimitives.ReadUInt128BigEndian(sent.MessageId.Span);
        Statement accepted = EvidenceLayouts.ParseStatement(forAlpha.Proofs[0].Statement.Span, out _)!;
        Assert.Equal(StatementKind.Accepted, accepted.Kind);
        Assert.Equal(("relayd-test", "alpha", "beta", id), (accepted.RelayId, accepted.SenderPartner, accepted.RecipientPartner, accepted.MessageId));
        Assert.Equal(EvidenceLayouts.UserHash("alpha", "alice"u8), accepted.SenderUserHash);
        Assert.Equal(EvidenceLayouts.UserHash("beta", "bob"u8), accepted.RecipientUserHash);
        Assert.Equal(SHA256.HashData(sent.Ciphertext.Span), accepted.CiphertextSha256);
        Assert.Equal(ack.AcceptedAtMs, accepted.AcceptedAtMs);

        Statement delivery = EvidenceLayouts.ParseStatement(forAlpha.Proofs[1].Statement.Span, out _)!;
        Assert.Equal(StatementKind.Delivery, delivery.Kind);
        Assert.Equal((DeliveryStatus.Acknowledged, "alpha", "beta", id), (delivery.Status, delivery.SenderPartner, delivery.RecipientPartner, delivery.MessageId));
        Assert.InRange(delivery.DeliveredAtMs, ack.AcceptedAtMs, delivery.AckedAtMs);
        Assert.InRange(delivery.AckedAtMs, delivery.DeliveredAtMs, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());

        // openssl, with nothing but the Welcome key as PEM and the head's bytes.
        EvidenceProof acceptedProof = forBeta.Proofs[0];
        string headPath = Path.Combine(_dir, "head.bin"), sigPath = Path.Combine(_dir, "head.sig"), pubPath = Path.Combine(_dir, "pub.pem");
        await File.WriteAllBytesAsync(headPath, acceptedProof.TreeHead.ToByteArray());
        await File.WriteAllBytesAsync(sigPath, acceptedProof.TreeHeadSignature.ToByteArray());
        await File.WriteAllTextAsync(pubPath, EvidenceKey.PublicKeyPem(welcomeKey));
        ExternalProcess.Result openssl = await ExternalProcess.RunAsync("openssl", ["pkeyutl", "-verify", "-pubin", "-inkey", pubPath, "-rawin", "-in", headPath, "-sigfile", sigPath]);
        Assert.True(openssl.ExitCode == 0, openssl.StandardOutput + openssl.StandardError);
        byte[] flippedHead = acceptedProof.TreeHead.ToByteArray();
        flippedHead[20] ^= 0x04;
        await File.WriteAllBytesAsync(headPath, flippedHead);
        Assert.NotEqual(0, (await ExternalProcess.RunAsync("openssl", ["pkeyutl", "-verify", "-pubin", "-inkey", pubPath, "-rawin", "-in", headPath, "-sigfile", sigPath])).ExitCode);

        // relayd evidence verify on the saved proof, then on copies with one bit flipped in each part.
        string proofPath = Path.Combine(_dir, "proof.txt");
        EvidenceProofFile.Save(acceptedProof, proofPath);
        ExternalProcess.Result verified = await ExternalProcess.RunRelaydAsync("evidence", "verify", proofPath, "--public-key", pubPath);
        Assert.True(verified.ExitCode == 0, verified.StandardOutput + verified.StandardError);
        Assert.Contains("verified:", verified.StandardOutput, StringComparison.Ordinal);
        Assert.Contains(id.ToString("x32", System.Globalization.CultureInfo.InvariantCulture), verified.StandardOutput, StringComparison.Ordinal);
        Assert.Contains(Convert.ToHexStringLower(SHA256.HashData(sent.Ciphertext.Span)), verified.StandardOutput, StringComparison.Ordinal);

        static ByteString Flip(ByteString bytes, int at)
        {
            byte[] b = bytes.ToByteArray();
            b[at] ^= 0x01;
            return ByteString.CopyFrom(b);
        }

        EvidenceProof statementFlipped = acceptedProof.Clone();
        statementFlipped.Statement = Flip(acceptedProof.Statement, acceptedProof.Statement.Length - 3);
        EvidenceProof headFlipped = acceptedProof.Clone();
        headFlipped.TreeHead = Flip(acceptedProof.TreeHead, acceptedProof.TreeHead.Length - 1);
        var cases = new List<(EvidenceProof Proof, string Named)> { (statementFlipped, "audit path"), (headFlipped, "signature") };
        if (acceptedProof.AuditPath.Count > 0)
        {
            EvidenceProof pathFlipped = acceptedProof.Clone();
            pathFlipped.AuditPath[0] = Flip(acceptedProof.AuditPath[0], 7);
            cases.Add((pathFlipped, "audit path"));
        }

        foreach ((EvidenceProof altered, string named) in cases)
        {
            EvidenceProofFile.Save(altered, proofPath);
            string[] refusal = CliAssert.Refusal(await ExternalProcess.RunRelaydAsync("evidence", "verify", proofPath, "--public-key", pubPath), 65);
            Assert.Contains("NOT verified", refusal[0], StringComparison.Ordinal);
            Assert.Contains(named, refusal[0], StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_queued_message_refused_when_its_user_revokes_consent_has_a_REFUSED_delivery_statement_that_verifies()
    {
        string keyPath = NewKey(out EvidenceKey key);
        await using TestRelay relay = TestRelay.Start(_pki, options =>
        {
            options.Evidence.KeyPath = keyPath;
            options.Evidence.SignInterval = TimeSpan.FromMilliseconds(50);
            options.Interop.RequireOptIn = true;
        });
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using (RelayClient beta = await relay.ConnectAsync("beta"))
        {
            await Interop.ConsentUsers.GrantAsync(beta, "bob");
        }

        await Interop.ConsentUsers.GrantAsync(alpha, "alice");
        Envelope sent = Envelopes.New("alpha", "beta", toUser: "bob", fromUser: "alice");
        Ack ack = await Envelopes.AcceptedAsync(alpha, sent);
        await Interop.ConsentUsers.RevokeAsync(alpha, "alice"); // while it waits for beta, who is away
        Receipt receipt = await alpha.Receipts.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within();
        Assert.Equal((ReceiptStatus.Refused, ErrorCode.NotOptedIn), (receipt.Status, receipt.Code));

        EvidenceReply reply = await ProofsAsync(alpha, "alpha", sent.MessageId, 2);
        Assert.All(reply.Proofs, proof => Assert.Null(EvidenceVerifier.Verify(proof, key.PublicKey)));
        Statement delivery = EvidenceLayouts.ParseStatement(reply.Proofs[1].Statement.Span, out _)!;
        Assert.Equal((StatementKind.Delivery, DeliveryStatus.Refused, "alpha", "beta"), (delivery.Kind, delivery.Status, delivery.SenderPartner, delivery.RecipientPartner));
        Assert.Equal(BinaryPrimitives.ReadUInt128BigEndian(sent.MessageId.Span), delivery.MessageId);
        Assert.InRange(delivery.DeliveredAtMs, ack.AcceptedAtMs, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        Assert.Equal(0, delivery.AckedAtMs);

        string proofPath = Path.Combine(_dir, "refused.txt"), pubPath = Path.Combine(_dir, "refused-pub.pem");
        EvidenceProofFile.Save(reply.Proofs[1], proofPath);
        await File.WriteAllTextAsync(pubPath, EvidenceKey.PublicKeyPem(key.PublicKey), TestContext.Current.CancellationToken);
        ExternalProcess.Result verified = await ExternalProcess.RunRelaydAsync("evidence", "verify", proofPath, "--public-key", pubPath);
        Assert.True(verified.ExitCode == 0, verified.StandardOutput + verified.StandardError);
        Assert.Contains("refused (consent revoked while queued)", verified.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("refused_at", verified.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_walkthrough_in_docs_evidence_md_verifies_a_served_proof_with_openssl_and_python_and_refuses_a_flipped_one()
    {
        string keyPath = NewKey(out EvidenceKey key);
        await using TestRelay relay = StartRelay(keyPath);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        for (int i = 0; i < 4; i++)
        {
            await SendAndAcknowledgeAsync(alpha, beta); // a few leaves before it: a path of more than one hash
        }

        (Envelope sent, _, _) = await SendAndAcknowledgeAsync(alpha, beta);
        EvidenceProof proof = (await ProofsAsync(beta, "alpha", sent.MessageId, 2)).Proofs[0];

        string docs = await File.ReadAllTextAsync(Path.Combine(ExternalProcess.RepositoryRoot, "docs", "evidence.md"));
        string shell = Block(docs, "### The signature", "```sh"), python = Block(docs, "### The audit path", "```python");
        string work = Directory.CreateDirectory(Path.Combine(_dir, "walkthrough")).FullName;
        await File.WriteAllTextAsync(Path.Combine(work, "check.sh"), shell);
        await File.WriteAllTextAsync(Path.Combine(work, "check.py"), python);

        async Task<string> RunAsync()
        {
            ExternalProcess.Result signature = await ExternalProcess.RunAsync("bash", ["-c", $"cd '{work}' && KEY_HEX={Convert.ToHexStringLower(alpha.Welcome.EvidencePublicKey.Span)} bash -e check.sh"]);
            ExternalProcess.Result path = await ExternalProcess.RunAsync("python3", [Path.Combine(work, "check.py"), Path.Combine(work, "proof.txt")]);
            return $"openssl exit {signature.ExitCode}: {signature.StandardOutput.Trim()} {signature.StandardError.Trim()}\npython: {path.StandardOutput.Trim()} {path.StandardError.Trim()}";
        }

        EvidenceProofFile.Save(proof, Path.Combine(work, "proof.txt"));
        string good = await RunAsync();
        Assert.True(good.Contains("openssl exit 0: Signature Verified Successfully", StringComparison.Ordinal) && good.Contains("python: path OK", StringComparison.Ordinal), good);

        EvidenceProof altered = proof.Clone();
        byte[] statement = altered.Statement.ToByteArray();
        statement[^1] ^= 0x80;
        altered.Statement = ByteString.CopyFrom(statement);
        byte[] head = altered.TreeHead.ToByteArray();
        head[^1] ^= 0x80;
        altered.TreeHead = ByteString.CopyFrom(head);
        EvidenceProofFile.Save(altered, Path.Combine(work, "proof.txt"));
        string bad = await RunAsync();
        Assert.True(!bad.Contains("openssl exit 0", StringComparison.Ordinal) && bad.Contains("python: path FAILS", StringComparison.Ordinal), bad);
    }

    /// <summary>The first fenced block opening with <paramref name="fence"/> after <paramref name="heading"/>.</summary>
    private static string Block(string markdown, string heading, string fence)
    {
        int at = markdown.IndexOf(heading, StringComparison.Ordinal);
        Assert.True(at >= 0, $"docs/evidence.md has no \"{heading}\"");
        int start = markdown.IndexOf(fence + "\n", at, StringComparison.Ordinal) + fence.Length + 1;
        return markdown[start..markdown.IndexOf("```", start, StringComparison.Ordinal)];
    }

    [Fact]
    public async Task A_partner_that_neither_sent_nor_received_a_message_gets_the_bytes_an_unknown_id_gets_for_random_askers_and_ids()
    {
        string keyPath = NewKey(out _);
        await using TestRelay relay = StartRelay(keyPath);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        await using RelayClient gamma = await relay.ConnectAsync("gamma");
        (Envelope first, _, _) = await SendAndAcknowledgeAsync(alpha, beta);
        (Envelope second, _, _) = await SendAndAcknowledgeAsync(alpha, beta);
        await ProofsAsync(alpha, "alpha", second.MessageId, 2);

        Dictionary<string, RelayClient> clients = new() { ["alpha"] = alpha, ["beta"] = beta, ["gamma"] = gamma };
        ByteString[] known = [first.MessageId, second.MessageId];
        byte[] unknownAnswer = Canonical(await gamma.EvidenceAsync("alpha", Guid.NewGuid().ToByteArray()).Within());
        Assert.Equal(Canonical(new EvidenceReply()), unknownAnswer);

        // Random askers, named senders and ids (known, unknown, wrong length): only alpha and beta about alpha's two
        // messages get proofs; every other answer is byte for byte the unknown id's.
        string[] askers = ["alpha", "beta", "gamma"], senders = ["alpha", "beta", "gamma", "nobody"];
        var cases = Gen.Select(Gen.Int[0, 2], Gen.Int[0, 3], Gen.Int[0, 3], Gen.Byte.Array[0, 20]);
        await cases.SampleAsync(async (a, s, which, random) =>
        {
            string asker = askers[a], sender = senders[s];
            ByteString id = which < 2 ? known[which] : ByteString.CopyFrom(which == 2 ? Guid.NewGuid().ToByteArray() : random);
            EvidenceReply reply = await clients[asker].EvidenceAsync(sender, id.Memory).Within();
            bool entitled = which < 2 && sender == "alpha" && asker is "alpha" or "beta";
            if (entitled)
            {
                Assert.Equal(2, reply.Proofs.Count);
            }
            else
            {
                Assert.Equal(unknownAnswer, Canonical(reply));
            }
        }, iter: 40, threads: 1);
    }

    // The reply's bytes with the request id, which the asker chose, set aside.
    private static byte[] Canonical(EvidenceReply reply)
    {
        EvidenceReply copy = reply.Clone();
        copy.RequestId = 0;
        return copy.ToByteArray();
    }

    [Fact]
    public async Task Heads_of_a_tree_are_consistent_over_time_each_later_head_contains_the_earlier()
    {
        string keyPath = NewKey(out EvidenceKey key);
        await using TestRelay relay = StartRelay(keyPath);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        EvidenceStore store = relay.Server.Evidence!;
        (Envelope kept, _, _) = await SendAndAcknowledgeAsync(alpha, beta);
        TreeHeadFields keptHead = EvidenceLayouts.ParseTreeHead((await ProofsAsync(alpha, "alpha", kept.MessageId, 2)).Proofs[0].TreeHead.Span, out _)!;
        for (int round = 0; round < 4; round++)
        {
            for (int i = 0; i <= round; i++)
            {
                (Envelope sent, _, _) = await SendAndAcknowledgeAsync(alpha, beta);
                await ProofsAsync(alpha, "alpha", sent.MessageId, 2); // signed before the next round
            }
        }

        IReadOnlyList<SignedHead> heads = store.CurrentHeads();
        Assert.True(heads.Count >= 4, $"{heads.Count} heads");
        for (int i = 1; i < heads.Count; i++)
        {
            TreeHeadFields older = EvidenceLayouts.ParseTreeHead(heads[i - 1].Head, out _)!, newer = EvidenceLayouts.ParseTreeHead(heads[i].Head, out _)!;
            Assert.True(EvidenceKey.Verify(key.PublicKey, heads[i].Head, heads[i].Signature));
            Assert.Equal(older.TreeId, newer.TreeId);
            Assert.True(newer.TreeSize > older.TreeSize);
            List<byte[]> proof = store.ConsistencyProof(older.TreeSize, newer.TreeSize);
            Assert.True(MerkleTree.VerifyConsistency(older.TreeSize, newer.TreeSize, older.RootHash, newer.RootHash, proof));
            byte[] otherRoot = (byte[])older.RootHash.Clone();
            otherRoot[5] ^= 1;
            Assert.False(MerkleTree.VerifyConsistency(older.TreeSize, newer.TreeSize, otherRoot, newer.RootHash, proof));
        }

        // Over the wire: the head alpha kept from its first proof, and the newest head now, are consistent.
        var ask = new EvidenceRequest { SenderPartner = "alpha", MessageId = kept.MessageId, ConsistencyTreeId = keptHead.TreeId, ConsistencyFromSize = (ulong)keptHead.TreeSize };
        EvidenceReply reply = await alpha.RequestEvidenceAsync(ask).Within();
        Assert.True(EvidenceKey.Verify(key.PublicKey, reply.ConsistencyTreeHead.Span, reply.ConsistencyTreeHeadSignature.Span));
        TreeHeadFields latest = EvidenceLayouts.ParseTreeHead(reply.ConsistencyTreeHead.Span, out _)!;
        Assert.True(latest.TreeSize > keptHead.TreeSize);
        Assert.True(MerkleTree.VerifyConsistency(keptHead.TreeSize, latest.TreeSize, keptHead.RootHash, latest.RootHash, [.. reply.ConsistencyProof.Select(p => p.ToByteArray())]));

        // It is about the relay, not the message: gamma asking about alpha's message, and about an unknown one, gets the same bytes.
        await using RelayClient gamma = await relay.ConnectAsync("gamma");
        EvidenceReply foreign = await gamma.RequestEvidenceAsync(ask).Within();
        EvidenceRequest unknown = ask.Clone();
        unknown.MessageId = ByteString.CopyFrom(Guid.NewGuid().ToByteArray());
        Assert.Equal(Canonical(foreign), Canonical(await gamma.RequestEvidenceAsync(unknown).Within()));
        Assert.Empty(foreign.Proofs);
    }

    [Fact]
    public async Task After_a_restart_the_proofs_of_a_message_evidenced_before_are_still_served_and_verify()
    {
        string keyPath = NewKey(out EvidenceKey key);
        string wal = Directory.CreateDirectory(Path.Combine(_dir, "wal")).FullName;
        Envelope sent;
        EvidenceReply before;
        ulong firstTree;
        await using (TestRelay relay = StartRelay(keyPath, wal))
        {
            await using RelayClient alpha = await relay.ConnectAsync("alpha");
            await using RelayClient beta = await relay.ConnectAsync("beta");
            (sent, _, _) = await SendAndAcknowledgeAsync(alpha, beta);
            before = await ProofsAsync(alpha, "alpha", sent.MessageId, 2);
            firstTree = relay.Server.Evidence!.CurrentTreeId;
        }

        await using (TestRelay relay = StartRelay(keyPath, wal))
        {
            Assert.True(relay.Server.Evidence!.CurrentTreeId > firstTree); // a new tree after a restart
            await using RelayClient beta = await relay.ConnectAsync("beta");
            EvidenceReply after = await ProofsAsync(beta, "alpha", sent.MessageId, 2);
            Assert.Equal(before.Proofs.Select(p => p.Statement), after.Proofs.Select(p => p.Statement));
            Assert.All(after.Proofs, p => Assert.Null(EvidenceVerifier.Verify(p, key.PublicKey)));
            await using RelayClient gamma = await relay.ConnectAsync("gamma");
            Assert.Empty((await gamma.EvidenceAsync("alpha", sent.MessageId.Memory).Within()).Proofs);
        }
    }

    [Fact]
    public async Task An_accepted_statement_the_relay_never_wrote_is_re_derived_from_the_log_at_start_once()
    {
        string keyPath = NewKey(out EvidenceKey key);
        string wal = Directory.CreateDirectory(Path.Combine(_dir, "wal-rederive")).FullName;
        Envelope queued = Envelopes.New("alpha", "beta", toUser: "bob", fromUser: "alice", ciphertext: Envelopes.RandomCiphertext(700));
        Ack ack;

        // As if killed before the writer got to it: the envelope is in the log (beta is offline), no statement is.
        await using (TestRelay relay = TestRelay.Start(_pki, options => options.Storage.Directory = wal))
        {
            await using RelayClient alpha = await relay.ConnectAsync("alpha");
            ack = await Envelopes.AcceptedAsync(alpha, queued);
        }

        await using (TestRelay relay = StartRelay(keyPath, wal))
        {
            Assert.Equal(1, relay.Server.Evidence!.Rederived);
            await using RelayClient alpha = await relay.ConnectAsync("alpha");
            EvidenceProof proof = Assert.Single((await ProofsAsync(alpha, "alpha", queued.MessageId, 1)).Proofs);
            Assert.Null(EvidenceVerifier.Verify(proof, key.PublicKey));
            Statement accepted = EvidenceLayouts.ParseStatement(proof.Statement.Span, out _)!;
            Assert.Equal(ack.AcceptedAtMs, accepted.AcceptedAtMs);
            Assert.Equal(SHA256.HashData(queued.Ciphertext.Span), accepted.CiphertextSha256);
            Assert.Equal(EvidenceLayouts.UserHash("alpha", "alice"u8), accepted.SenderUserHash);
        }

        await using (TestRelay relay = StartRelay(keyPath, wal))
        {
            Assert.Equal(0, relay.Server.Evidence!.Rederived); // already in the evidence files: not written twice
            await using RelayClient alpha = await relay.ConnectAsync("alpha");
            await using RelayClient beta = await relay.ConnectAsync("beta");
            Deliver delivered = await beta.Deliveries.ReadAsync().Within();
            await beta.AcknowledgeAsync(delivered);
            EvidenceReply reply = await ProofsAsync(alpha, "alpha", queued.MessageId, 2);
            Assert.All(reply.Proofs, p => Assert.Null(EvidenceVerifier.Verify(p, key.PublicKey)));
        }
    }

    [Fact]
    public async Task After_SIGKILL_of_a_real_relay_the_proofs_that_were_served_are_served_again()
    {
        string keyPath = NewKey(out EvidenceKey key);
        await using var relay = new RelaydProcess(_pki, $"""
            [evidence]
            key = "{keyPath}"
            sign_interval_ms = 50
            """);
        await relay.StartAsync();
        Envelope sent;
        EvidenceReply before;
        await using (RelayClient alpha = await relay.ConnectAsync("alpha"))
        await using (RelayClient beta = await relay.ConnectAsync("beta"))
        {
            Assert.Equal(key.PublicKey, alpha.Welcome.EvidencePublicKey.ToByteArray());
            (sent, _, _) = await SendAndAcknowledgeAsync(alpha, beta);
            before = await ProofsAsync(alpha, "alpha", sent.MessageId, 2);
            await relay.KillAsync();
        }

        await relay.StartAsync();
        await using RelayClient again = await relay.ConnectAsync("beta");
        EvidenceReply after = await ProofsAsync(again, "alpha", sent.MessageId, 2);
        Assert.Equal(before.Proofs.Select(p => p.Statement), after.Proofs.Select(p => p.Statement));
        Assert.All(after.Proofs, p => Assert.Null(EvidenceVerifier.Verify(p, key.PublicKey)));
    }

    [Fact]
    public async Task A_key_readable_by_others_is_refused_at_start_naming_the_path_and_mode()
    {
        string keyPath = NewKey(out _);
        File.SetUnixFileMode(keyPath, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        await using var relay = new RelaydProcess(_pki, $"""
            [evidence]
            key = "{keyPath}"
            """);
        ExternalProcess.Result run = await ExternalProcess.RunRelaydAsync("run", "--config", relay.ConfigPath);
        string[] refusal = CliAssert.Refusal(run, 78);
        Assert.Contains("refusing to start", refusal[0], StringComparison.Ordinal);
        Assert.Contains(keyPath, refusal[0], StringComparison.Ordinal);
        Assert.Contains("mode 0644", refusal[0], StringComparison.Ordinal);

        ExternalProcess.Result check = await ExternalProcess.RunRelaydAsync("check-config", "--config", relay.ConfigPath);
        Assert.NotEqual(0, check.ExitCode);
        Assert.Contains("evidence.key", check.StandardOutput + check.StandardError, StringComparison.Ordinal);
        Assert.Contains("mode 0644", check.StandardOutput + check.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_CLI_creates_a_key_once_and_prints_its_public_key_from_the_key_or_the_config()
    {
        string keyPath = Path.Combine(_dir, "cli.key");
        ExternalProcess.Result created = await ExternalProcess.RunRelaydAsync("pki", "init-evidence", "--out", keyPath);
        Assert.True(created.ExitCode == 0, created.StandardError);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyPath));
        EvidenceKey key = EvidenceKey.TryLoad(keyPath, out string? problem) ?? throw new InvalidOperationException(problem);
        Assert.Contains(Convert.ToHexStringLower(key.PublicKey), created.StandardOutput, StringComparison.Ordinal);

        string before = await File.ReadAllTextAsync(keyPath);
        string[] refusal = CliAssert.Refusal(await ExternalProcess.RunRelaydAsync("pki", "init-evidence", "--out", keyPath), 73);
        Assert.Contains("refusing to replace", refusal[0], StringComparison.Ordinal);
        Assert.Equal(before, await File.ReadAllTextAsync(keyPath));

        ExternalProcess.Result fromKey = await ExternalProcess.RunRelaydAsync("evidence", "public-key", "--key", keyPath);
        Assert.True(fromKey.ExitCode == 0, fromKey.StandardError);
        Assert.Contains(Convert.ToHexStringLower(key.PublicKey), fromKey.StandardOutput, StringComparison.Ordinal);
        Assert.Contains(Convert.ToBase64String(key.PublicKey), fromKey.StandardOutput, StringComparison.Ordinal);
        Assert.Equal(key.PublicKey, EvidenceKey.ParsePublicKey(fromKey.StandardOutput)); // the PEM in it

        await using var relay = new RelaydProcess(_pki, $"""
            [evidence]
            key = "{keyPath}"
            """);
        ExternalProcess.Result fromConfig = await ExternalProcess.RunRelaydAsync("evidence", "public-key", "--config", relay.ConfigPath);
        Assert.Equal(fromKey.StandardOutput, fromConfig.StandardOutput);

        CliAssert.Refusal(await ExternalProcess.RunRelaydAsync("evidence", "public-key", "--key", Path.Combine(_dir, "missing.key")), 66);
    }
}
