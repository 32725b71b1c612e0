using System.Buffers;
using System.Text;
using Google.Protobuf;
using Relayd.Interop.Consent;
using Relayd.Protocol.V1;
using Relayd.Routing;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Interop;

/// <summary>Bytes per opted-in user, measured with the managed heap's size around 1 M inserts (run alone: other tests' allocations would count).</summary>
[Collection(nameof(MemorySensitiveCollection))]
public sealed class ConsentTableMemoryTests
{
    private static readonly PartnerInfo Alpha = new(new PartnerOptions { Id = "alpha" }, new RelayLimits());
    private static readonly PartnerInfo Beta = new(new PartnerOptions { Id = "beta" }, new RelayLimits());

    [Fact]
    public void One_million_users_take_at_most_48_bytes_each()
    {
        const int users = 1_000_000;
        long before = GC.GetTotalMemory(forceFullCollection: true);
        var table = new ConsentTable(required: true, seed: 3);
        for (int batch = 0; batch < users / 10_000; batch++)
        {
            var update = new ConsentUpdate();
            for (int i = 0; i < 10_000; i++)
            {
                update.Changes.Add(new ConsentChange { User = ByteString.CopyFromUtf8($"user-{batch}-{i}"), Action = ConsentAction.ConsentGrant });
            }

            table.Apply("alpha", update);
        }

        long after = GC.GetTotalMemory(forceFullCollection: true);
        double perUser = (after - before) / (double)users;
        TestContext.Current.TestOutputHelper?.WriteLine($"{users} users: {after - before} bytes retained, {perUser:F1} B per user; slot arrays {table.Bytes} bytes");
        Assert.Equal(users, table.Users);
        Assert.InRange(perUser, 16, 48);
        Assert.True(table.OptedIn(Alpha, new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes("user-0-0")), Beta));
        Assert.True(table.OptedIn(Alpha, new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes($"user-{(users / 10_000) - 1}-9999")), Beta));
        GC.KeepAlive(table);
    }
}
