using BenchmarkDotNet.Attributes;
using Google.Protobuf;
using Relayd.Admission;
using Relayd.Interop.Consent;
using Relayd.Protocol.V1;

namespace Relayd.Benchmarks;

/// <summary>
/// <see cref="HotPathBenchmarks"/> with opt-in: required (both users opted in: alice at alpha, user-0 … user-63 at
/// beta, so every envelope is admitted) or not required. The consent lookups on the route (two per envelope) and the
/// take step's epoch check must add no allocation: 0 B per operation in both rows.
/// </summary>
[MemoryDiagnoser]
public class OptInHotPathBenchmarks : HotPathBenchmarks
{
    [Params(false, true)]
    public bool RequireOptIn { get; set; }

    private protected override InteropPolicy CreateInterop(IRateLimiter rateLimits)
    {
        var consent = new ConsentTable(RequireOptIn, seed: 20261202);
        consent.Apply("alpha", Grants(["alice"]));
        consent.Apply("beta", Grants([.. Enumerable.Range(0, RecipientUsers).Select(i => "user-" + i)]));
        return new InteropPolicy(consent, rateLimits);
    }

    private static ConsentUpdate Grants(string[] users)
    {
        var update = new ConsentUpdate();
        foreach (string user in users)
        {
            update.Changes.Add(new ConsentChange { User = ByteString.CopyFromUtf8(user), Action = ConsentAction.ConsentGrant });
        }

        return update;
    }
}
