using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Relayd.Support.Evidence;

/// <summary>
/// SHA-256 for evidence: several small hashes per message (two user ids, the ciphertext, two leaves, their nodes).
/// Calls OpenSSL's own SHA256_Init/Update/Final (the same libcrypto.so.3 .NET's <see cref="SHA256"/> runs on) over a
/// context on the stack, falling back to a reused <see cref="IncrementalHash"/> per thread where that library or those
/// symbols are missing.
/// </summary>
/// <remarks>
/// Why not <see cref="IncrementalHash"/> alone: every call of it goes through .NET's OpenSSL shim, which clears
/// OpenSSL's error queue and finalises into a fresh EVP context. Profiled under load with evidence on (perf, bench/README.md
/// "Evidence"), ERR_clear_error, CRYPTO_free and malloc/free took 9% of the relay's CPU, against under 2% for the
/// SHA-256 compression itself. The low-level calls are plain functions on a caller-owned struct: no error queue, no
/// allocation. This binds OpenSSL; it implements no cryptography.
/// </remarks>
internal static unsafe partial class Sha256
{
    public const int HashBytes = 32;

    // OpenSSL 3's SHA256_CTX is 112 bytes (8 + 2 + 16 words, num, md_len); reserved larger for any layout change.
    private const int ContextBytes = 256;

    // Inputs up to this size are hashed without a GC transition (well under a microsecond with SHA-NI); a larger one
    // is a normal P/Invoke so a long hash never holds up a collection.
    private const int SuppressTransitionBytes = 4096;

    private const string Library = "libcrypto.so.3";

    [ThreadStatic]
    private static IncrementalHash? t_fallback;

    /// <summary>Whether OpenSSL's SHA256_* functions are used (else <see cref="IncrementalHash"/>).</summary>
    public static bool IsNative { get; } = ProbeNative();

    public static void Hash(ReadOnlySpan<byte> input, Span<byte> destination)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(destination.Length, HashBytes);
        if (!IsNative)
        {
            IncrementalHash hash = Fallback;
            hash.AppendData(input);
            hash.GetHashAndReset(destination);
            return;
        }

        byte* context = stackalloc byte[ContextBytes];
        fixed (byte* data = input)
        fixed (byte* md = destination)
        {
            _ = Init(context);
            Update(context, data, input.Length);
            _ = Final(md, context);
        }
    }

    public static byte[] Hash(ReadOnlySpan<byte> input)
    {
        byte[] result = new byte[HashBytes];
        Hash(input, result);
        return result;
    }

    public static void Hash(in ReadOnlySequence<byte> input, Span<byte> destination)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(destination.Length, HashBytes);
        if (input.IsSingleSegment)
        {
            Hash(input.FirstSpan, destination);
            return;
        }

        if (!IsNative)
        {
            IncrementalHash hash = Fallback;
            foreach (ReadOnlyMemory<byte> segment in input)
            {
                hash.AppendData(segment.Span);
            }

            hash.GetHashAndReset(destination);
            return;
        }

        byte* context = stackalloc byte[ContextBytes];
        _ = Init(context);
        foreach (ReadOnlyMemory<byte> segment in input)
        {
            fixed (byte* data = segment.Span)
            {
                Update(context, data, segment.Length);
            }
        }

        fixed (byte* md = destination)
        {
            _ = Final(md, context);
        }
    }

    private static IncrementalHash Fallback => t_fallback ??= IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Update(byte* context, byte* data, int length)
    {
        if (length <= SuppressTransitionBytes)
        {
            _ = UpdateShort(context, data, (nuint)length);
        }
        else
        {
            _ = UpdateLong(context, data, (nuint)length);
        }
    }

    private static bool ProbeNative()
    {
        if (Environment.GetEnvironmentVariable("RELAYD_EVIDENCE_SHA256") == "managed" ||
            !NativeLibrary.TryLoad(Library, typeof(Sha256).Assembly, null, out IntPtr handle))
        {
            return false;
        }

        if (!NativeLibrary.TryGetExport(handle, "SHA256_Init", out _) || !NativeLibrary.TryGetExport(handle, "SHA256_Update", out _) ||
            !NativeLibrary.TryGetExport(handle, "SHA256_Final", out _))
        {
            return false;
        }

        // Known answers before trusting the binding: empty, "abc" (FIPS 180-2), and a two-block input against .NET's.
        ReadOnlySpan<byte> abc = "abc"u8;
        Span<byte> probe = stackalloc byte[200];
        for (int i = 0; i < probe.Length; i++)
        {
            probe[i] = (byte)(i * 7);
        }

        return Matches([]) && Matches(abc) && Matches(probe);

        static bool Matches(ReadOnlySpan<byte> input)
        {
            Span<byte> native = stackalloc byte[HashBytes];
            byte* context = stackalloc byte[ContextBytes];
            fixed (byte* data = input)
            fixed (byte* md = native)
            {
                if (Init(context) != 1 || UpdateLong(context, data, (nuint)input.Length) != 1 || Final(md, context) != 1)
                {
                    return false;
                }
            }

            return native.SequenceEqual(SHA256.HashData(input));
        }
    }

    [LibraryImport(Library, EntryPoint = "SHA256_Init")]
    [SuppressGCTransition]
    private static partial int Init(byte* context);

    [LibraryImport(Library, EntryPoint = "SHA256_Update")]
    [SuppressGCTransition]
    private static partial int UpdateShort(byte* context, byte* data, nuint length);

    [LibraryImport(Library, EntryPoint = "SHA256_Update")]
    private static partial int UpdateLong(byte* context, byte* data, nuint length);

    [LibraryImport(Library, EntryPoint = "SHA256_Final")]
    [SuppressGCTransition]
    private static partial int Final(byte* md, byte* context);
}
