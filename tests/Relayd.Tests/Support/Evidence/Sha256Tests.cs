using System.Security.Cryptography;
using CsCheck;
using Relayd.Support.Evidence;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Support.Evidence;

/// <summary>Evidence's direct OpenSSL SHA-256 binding gives .NET's SHA-256 for every length and slicing.</summary>
public sealed class Sha256Tests
{
    [Fact]
    public void Debian_libcrypto_is_bound_directly_not_the_fallback()
    {
        // The fast path is what the relay runs on Debian: if the probe failed, every evidence hash would quietly take
        // the slow IncrementalHash path, and the benchmarks would measure the wrong thing.
        Assert.True(File.Exists("/usr/lib/x86_64-linux-gnu/libcrypto.so.3") || File.Exists("/usr/lib/aarch64-linux-gnu/libcrypto.so.3"), "libcrypto.so.3 is not installed");
        Assert.True(Sha256.IsNative);
    }

    [Fact]
    public void Any_input_hashes_as_SHA256_HashData_does_in_one_span_or_in_segments()
    {
        // Lengths across block boundaries and the 4 KiB switch between the GC-transition-free call and the normal one.
        Gen.Select(Gen.Byte.Array[Gen.Frequency((6, Gen.Int[0, 300]), (2, Gen.Int[4000, 4200]), (1, Gen.Int[0, 70_000]))], Gen.Int[1, 5000]).Sample((data, chunk) =>
        {
            byte[] expected = SHA256.HashData(data);
            Assert.Equal(expected, Sha256.Hash(data));
            byte[] segmented = new byte[32];
            Sha256.Hash(SegmentedSequence.Of(data, chunk), segmented);
            Assert.Equal(expected, segmented);
        }, iter: 300);
    }
}
