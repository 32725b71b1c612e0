using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Relayd.Hosting.Control;

/// <summary>Who is at the other end of a unix socket, as the kernel vouches for it (SO_PEERCRED: the peer's pid, uid, gid at connect).</summary>
internal readonly record struct PeerCredentials(int Pid, uint Uid, uint Gid)
{
    private const int SolSocket = 1;   // <asm-generic/socket.h>
    private const int SoPeerCred = 17;
    private const int UcredBytes = 12; // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
    private const int SoPeerGroups = 59; // Linux 4.13+: the peer's supplementary groups at connect, gid_t[]
    private const int MaxGroups = 1024;  // more than any admin account has; beyond it the /proc fallback applies

    /// <summary>
    /// The peer's supplementary groups as the kernel recorded them at connect (SO_PEERGROUPS); empty when the kernel
    /// does not say. Unlike /proc/PID/status, this works under ProtectProc=invisible.
    /// </summary>
    public IReadOnlyList<uint> Groups { get; init; } = [];

    /// <summary>Reads the credentials of <paramref name="socket"/>'s peer.</summary>
    /// <exception cref="SocketException">The socket has no peer credentials (not a connected unix socket).</exception>
    public static PeerCredentials Read(Socket socket)
    {
        Span<byte> ucred = stackalloc byte[UcredBytes];
        int length = socket.GetRawSocketOption(SolSocket, SoPeerCred, ucred);
        if (length < UcredBytes)
        {
            throw new SocketException((int)SocketError.InvalidArgument, $"SO_PEERCRED returned {length} bytes, expected {UcredBytes}");
        }

        return new PeerCredentials(
            MemoryMarshal.Read<int>(ucred),
            MemoryMarshal.Read<uint>(ucred[4..]),
            MemoryMarshal.Read<uint>(ucred[8..]))
        {
            Groups = ReadGroups(socket),
        };
    }

    private static uint[] ReadGroups(Socket socket)
    {
        byte[] buffer = new byte[MaxGroups * sizeof(uint)];
        try
        {
            int length = socket.GetRawSocketOption(SolSocket, SoPeerGroups, buffer);
            return [.. MemoryMarshal.Cast<byte, uint>(buffer.AsSpan(0, length - (length % sizeof(uint))))];
        }
        catch (SocketException)
        {
            return []; // an older kernel (ENOPROTOOPT) or more groups than the buffer (ERANGE)
        }
    }

    /// <summary>For the log and the reload's "requested by": <c>ctl uid=0 pid=123</c>.</summary>
    public string Describe() => $"ctl uid={Uid} pid={Pid}";
}
