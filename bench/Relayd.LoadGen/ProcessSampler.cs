using System.Globalization;

namespace Relayd.LoadGen;

/// <summary>Reads a server process's resident memory and CPU time from /proc, without touching the process.</summary>
internal sealed class ProcessSampler : IDisposable
{
    private static readonly double TicksPerSecond = 100; // USER_HZ on Linux
    private readonly int? _pid;
    private readonly double _startCpu;
    private readonly DateTime _startTime = DateTime.UtcNow;
    private double? _endCpu;
    private DateTime _endTime;

    public ProcessSampler(int? pid)
    {
        _pid = pid;
        _startCpu = CpuSeconds() ?? 0;
        Sample();
    }

    public long? PeakRssBytes { get; private set; }

    public double? CpuCores => _pid is null || _endCpu is null ? null : (_endCpu - _startCpu) / (_endTime - _startTime).TotalSeconds;

    public void Sample()
    {
        if (_pid is null)
        {
            return;
        }

        try
        {
            foreach (string line in File.ReadLines($"/proc/{_pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    long kib = long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture);
                    PeakRssBytes = Math.Max(PeakRssBytes ?? 0, kib * 1024);
                }
            }
        }
        catch (IOException)
        {
            // The process is gone.
        }
    }

    /// <summary>Samples every <paramref name="interval"/> until <paramref name="stop"/> is cancelled (for the peak RSS of a run).</summary>
    public Task SampleUntilAsync(TimeSpan interval, CancellationToken stop) => Task.Run(async () =>
    {
        while (!stop.IsCancellationRequested)
        {
            Sample();
            await Task.Delay(interval, CancellationToken.None);
        }
    }, CancellationToken.None);

    public void MarkEnd()
    {
        Sample();
        _endCpu = CpuSeconds();
        _endTime = DateTime.UtcNow;
    }

    public void Dispose()
    {
    }

    private double? CpuSeconds()
    {
        if (_pid is null)
        {
            return null;
        }

        try
        {
            string stat = File.ReadAllText($"/proc/{_pid}/stat");
            string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            // Fields after the command: state is [0], utime is [11], stime is [12].
            return (double.Parse(fields[11], CultureInfo.InvariantCulture) + double.Parse(fields[12], CultureInfo.InvariantCulture)) / TicksPerSecond;
        }
        catch (IOException)
        {
            return null;
        }
    }
}
