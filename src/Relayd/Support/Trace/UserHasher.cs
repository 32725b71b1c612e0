using System.Buffers;
using System.Security.Cryptography;
using Org.BouncyCastle.Crypto.Macs;
using Org.BouncyCastle.Crypto.Parameters;

namespace Relayd.Support.Trace;

/// <summary>
/// The keyed hash (SipHash-2-4) under which the trace keeps user ids: the same user always hashes the same on this
/// relay, and without the key (<c>&lt;wal.dir&gt;/trace/user-hash.key</c>, 16 random bytes, 0600, made once) a hash
/// cannot be tested against guessed ids. The raw ids are never kept.
/// </summary>
internal sealed class UserHasher
{
    public const string KeyFileName = "user-hash.key";

    [ThreadStatic]
    private static (UserHasher Owner, SipHash Mac)? t_mac; // one MAC per thread and hasher: hashing allocates nothing after the first

    private readonly KeyParameter _key;

    private UserHasher(byte[] key) => _key = new KeyParameter(key);

    /// <summary>Loads the key from <paramref name="directory"/>, creating it (mode 0600) when missing.</summary>
    /// <exception cref="IOException">The key file exists but is not 16 bytes, or cannot be read or written.</exception>
    public static UserHasher Open(string directory)
    {
        string path = Path.Combine(directory, KeyFileName);
        if (!File.Exists(path))
        {
            byte[] fresh = RandomNumberGenerator.GetBytes(16);
            try
            {
                var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
                if (!OperatingSystem.IsWindows())
                {
                    options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
                }

                using var created = new FileStream(path, options);
                created.Write(fresh);
                created.Flush(flushToDisk: true);
            }
            catch (IOException) when (File.Exists(path))
            {
                // Another process made it first: read theirs.
            }
        }

        byte[] key = File.ReadAllBytes(path);
        return key.Length == 16 ? new UserHasher(key)
            : throw new IOException($"{path} holds {key.Length} bytes, not the 16 of a SipHash key: delete it to make a new one (hashes in older traces will no longer match)");
    }

    /// <summary>The keyed hash of one user id (0 only by chance, and for none: an empty id hashes to 0).</summary>
    public ulong Hash(in ReadOnlySequence<byte> user)
    {
        if (user.IsEmpty)
        {
            return 0;
        }

        SipHash mac;
        if (t_mac is { } cached && ReferenceEquals(cached.Owner, this))
        {
            mac = cached.Mac;
        }
        else
        {
            mac = new SipHash(2, 4);
            mac.Init(_key);
            t_mac = (this, mac);
        }

        foreach (ReadOnlyMemory<byte> segment in user)
        {
            mac.BlockUpdate(segment.Span);
        }

        return (ulong)mac.DoFinal(); // resets the MAC for the next id
    }
}
