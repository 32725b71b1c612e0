using CsCheck;
using Google.Protobuf;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Support.Trace;

/// <summary>
/// A partner learns nothing of traffic it is not part of (property test over real TLS, random partners and ids): a
/// TraceRequest about a message it neither sent nor received, or naming the wrong sender, gets the same bytes as one
/// about an id nobody ever sent.
/// </summary>
public sealed class TraceIsolationTests : IClassFixture<PkiFixture>
{
    private static readonly string[] PartnerIds = ["alpha", "beta", "gamma"];

    private readonly TestPki _pki;

    public TraceIsolationTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task A_partner_gets_events_only_for_its_own_messages_and_unknown_and_foreign_ids_get_identical_bytes()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        var clients = new Dictionary<string, RelayClient>();
        foreach (string id in PartnerIds)
        {
            clients[id] = await relay.ConnectAsync(id);
        }

        try
        {
            int foreign = 0, own = 0;
            Gen<(int Sender, int RecipientOffset, int Named, int Asker, bool Sent)> scenarios =
                Gen.Select(Gen.Int[0, 2], Gen.Int[1, 2], Gen.Int[0, 2], Gen.Int[0, 2], Gen.Bool);
            await scenarios.SampleAsync(async s =>
            {
                string sender = PartnerIds[s.Sender];
                string recipient = PartnerIds[(s.Sender + s.RecipientOffset) % 3];
                string named = PartnerIds[s.Named];
                string asker = PartnerIds[s.Asker];
                Envelope envelope = Envelopes.New(sender, recipient);
                if (s.Sent)
                {
                    await clients[sender].SendAsync(envelope).Within();
                }

                TraceReply reply = await clients[asker].TraceAsync(named, envelope.MessageId.Memory).Within();
                TraceReply unknown = await clients[asker].TraceAsync(named, Envelopes.New(sender, recipient).MessageId.Memory).Within();

                bool party = s.Sent && named == sender && (asker == sender || asker == recipient);
                if (party)
                {
                    own++;
                    Assert.Contains(reply.Events, e => e.Kind == TraceEventKind.TraceAccepted);
                }
                else
                {
                    foreign++;
                    Assert.Equal(Bytes(unknown), Bytes(reply));
                    Assert.Empty(reply.Events);
                }
            }, iter: 60, threads: 1);

            Assert.True(own > 0 && foreign > 0, $"the samples covered {own} own and {foreign} foreign requests"); // both sides were tried
        }
        finally
        {
            foreach (RelayClient client in clients.Values)
            {
                await client.DisposeAsync();
            }
        }
    }

    // The reply's bytes as they would be with the same request id: what differs between two replies besides it.
    private static byte[] Bytes(TraceReply reply)
    {
        TraceReply copy = reply.Clone();
        copy.RequestId = 1;
        return copy.ToByteArray();
    }
}
