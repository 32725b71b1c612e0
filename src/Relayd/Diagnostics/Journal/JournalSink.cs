using System.Net;
using System.Net.Sockets;

namespace Relayd.Diagnostics.Journal;

/// <summary>
/// One AF_UNIX datagram socket to journald's native socket, shared by every logger. A datagram the journal does not
/// take (journald stopped or restarting, socket gone, buffer full past the send timeout, too large) is counted and
/// its entry written to the fallback writer (stderr, itself the journal's stream socket under systemd) instead;
/// sending never throws into the code that logged.
/// </summary>
/// <remarks>
/// Written by hand: no NuGet package served here speaks journald's native protocol (Tmds.Systemd is not served).
/// journald also takes an entry too large for a datagram as a sealed memfd passed with SCM_RIGHTS; relayd's
/// entries are short, so it truncates MESSAGE instead (<see cref="JournalOptions.MaxEntryBytes"/>).
/// </remarks>
internal sealed class JournalSink : IDisposable
{
    private static readonly TimeSpan SendTimeout = TimeSpan.FromSeconds(1); // a stuck journald must not stall the relay for long

    private readonly Socket _socket;
    private readonly SocketAddress _journal;
    private readonly TextWriter _fallback;
    private long _notSent;
    private int _failing; // 1 from the first failed send until one succeeds again

    public JournalSink(JournalOptions options, TextWriter? fallback = null)
    {
        Options = options;
        _fallback = fallback ?? Console.Error;
        _journal = new UnixDomainSocketEndPoint(options.SocketPath).Serialize();
        _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified)
        {
            SendBufferSize = options.MaxEntryBytes + 4096, // the kernel bounds a datagram by the send buffer
            SendTimeout = (int)SendTimeout.TotalMilliseconds,
        };
    }

    public JournalOptions Options { get; }

    /// <summary>Entries the journal did not take (each went to the fallback writer instead).</summary>
    public long NotSent => Interlocked.Read(ref _notSent);

    /// <summary>Sends one entry; on failure writes <paramref name="message"/> to the fallback writer with its syslog priority.</summary>
    public void Send(ReadOnlySpan<byte> datagram, int priority, string message)
    {
        SocketError error;
        try
        {
            _ = _socket.SendTo(datagram, SocketFlags.None, _journal);
            if (Volatile.Read(ref _failing) == 1)
            {
                Volatile.Write(ref _failing, 0);
            }

            return;
        }
        catch (SocketException ex)
        {
            error = ex.SocketErrorCode;
        }
        catch (ObjectDisposedException)
        {
            error = SocketError.Shutdown; // a last line logged while the host disposes its providers
        }

        _ = Interlocked.Increment(ref _notSent);
        WriteFallback(error, priority, message);
    }

    public void Dispose() => _socket.Dispose();

    /// <summary>
    /// The entry as stderr lines with a <c>&lt;N&gt;</c> priority prefix, which journald's stream reader turns back
    /// into the entry's priority; the first failure of an outage says why, once.
    /// </summary>
    private void WriteFallback(SocketError error, int priority, string message)
    {
        try
        {
            lock (_fallback)
            {
                if (Interlocked.Exchange(ref _failing, 1) == 0)
                {
                    _fallback.WriteLine($"<4>relayd: cannot send to the journal at {Options.SocketPath} ({error}); writing entries to stderr until it takes them again");
                }

                foreach (ReadOnlySpan<char> line in message.AsSpan().EnumerateLines())
                {
                    _fallback.Write('<');
                    _fallback.Write(priority);
                    _fallback.Write('>');
                    _fallback.WriteLine(line);
                }

                _fallback.Flush();
            }
        }
        catch (IOException)
        {
            // stderr gone too: nothing is left to tell; the entry is counted in NotSent.
        }
        catch (ObjectDisposedException)
        {
        }
    }
}
