using System.Globalization;

namespace Relayd.Tests.Infrastructure;

/// <summary>Reads a process's resident memory from /proc, and samples it in the background to find the peak.</summary>
internal sealed class ProcessMemory : IAsyncDisposable
{
    private readonly Func<int> _pid;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _sampling;
    private long _peak;
    private long _peakAnon;
    private long _peakFile;
    private int _samples;

    private ProcessMemory(Func<int> pid, TimeSpan interval)
    {
        _pid = pid;
        _sampling = SampleAsync(interval);
    }

    /// <summary>Highest VmRSS seen so far, in bytes.</summary>
    public long PeakBytes => Interlocked.Read(ref _peak);

    /// <summary>Highest RssAnon seen (heap, stacks: what the process itself allocated), in bytes.</summary>
    public long PeakAnonBytes => Interlocked.Read(ref _peakAnon);

    /// <summary>Highest RssFile seen (resident pages of mapped files: code, and any mapped log segments), in bytes.</summary>
    public long PeakFileBytes => Interlocked.Read(ref _peakFile);

    public int Samples => Volatile.Read(ref _samples);

    /// <summary>Samples VmRSS of the process <paramref name="pid"/> returns, every <paramref name="interval"/>, until disposed.</summary>
    public static ProcessMemory StartSampling(Func<int> pid, TimeSpan interval) => new(pid, interval);

    /// <summary>VmRSS (anonymous + file-backed + shared resident pages) of <paramref name="pid"/>, in bytes.</summary>
    public static long ReadVmRssBytes(int pid) => ReadStatusKilobytes(pid, "VmRSS:") * 1024;

    /// <summary>RssAnon of <paramref name="pid"/>, in bytes: the heap and stacks, without mapped files.</summary>
    public static long ReadRssAnonBytes(int pid) => ReadStatusKilobytes(pid, "RssAnon:") * 1024;

    /// <summary>RssFile of <paramref name="pid"/>, in bytes: resident pages of mapped files.</summary>
    public static long ReadRssFileBytes(int pid) => ReadStatusKilobytes(pid, "RssFile:") * 1024;

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _sampling;
        _stop.Dispose();
    }

    private async Task SampleAsync(TimeSpan interval)
    {
        await Task.Yield();
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                int pid = _pid();
                Raise(ref _peak, ReadVmRssBytes(pid));
                Raise(ref _peakAnon, ReadRssAnonBytes(pid));
                Raise(ref _peakFile, ReadRssFileBytes(pid));
                Interlocked.Increment(ref _samples);
            }
            catch (Exception ex) when (ex is IOException or InvalidOperationException or FormatException or UnauthorizedAccessException)
            {
                // Between processes (a restart) or the process just exited: nothing to sample.
            }

            try
            {
                await Task.Delay(interval, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private static void Raise(ref long peak, long sample)
    {
        if (sample > Interlocked.Read(ref peak))
        {
            Interlocked.Exchange(ref peak, sample);
        }
    }

    private static long ReadStatusKilobytes(int pid, string field)
    {
        foreach (string line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith(field, StringComparison.Ordinal))
            {
                // "VmRSS:	   81234 kB"
                string number = line[field.Length..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
                return long.Parse(number, NumberStyles.None, CultureInfo.InvariantCulture);
            }
        }

        throw new FormatException($"/proc/{pid}/status has no {field} line");
    }
}
