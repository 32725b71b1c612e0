using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using HdrHistogram;

namespace Relayd.LoadGen;

/// <summary>
/// Drives one <see cref="ILoadTarget"/> with a <see cref="Workload"/>: closed loop (a window of unacknowledged
/// messages per connection) or open loop (a fixed rate, latency measured from each message's intended send time so
/// that a stalled system cannot hide its backlog: coordinated omission corrected).
/// </summary>
public sealed class LoadDriver(Workload workload, TextWriter? progress)
{
    // Payloads start with this marker and the intended send time (Stopwatch ticks) for end-to-end latency.
    private const ulong Marker = 0x52454C4159445453; // "RELAYDTS"
    internal const int HeaderBytes = 16;

    /// <summary>End-to-end latency is recorded for one message in this many.</summary>
    public const int EndToEndSampling = 16;

    private readonly byte[] _sharedPayload = new byte[Math.Max(workload.MessageBytes, HeaderBytes)];
    private readonly LongHistogram _ackLatency = new(TimeSpan.TicksPerMinute, 3);
    private readonly LongHistogram _endToEnd = new(TimeSpan.TicksPerMinute, 3);
    private readonly LongHistogram _sendLag = new(TimeSpan.TicksPerMinute, 3);
    private readonly ConcurrentDictionary<string, long> _errors = new();
    private long _measureFromTicks = long.MaxValue;
    private long _sent;
    private long _acked;
    private long _refused;
    private long _delivered;
    private long _measuredAcked;
    private long _measuredDelivered;

    public async Task<RunResult> RunAsync(ILoadTarget target, CancellationToken cancellationToken)
    {
        await target.StartAsync(workload, OnDelivered, cancellationToken);
        using var sampler = new ProcessSampler(target.ServerPid);
        using var client = new ProcessSampler(Environment.ProcessId); // the client library's side: senders and receivers alike
        var clientGc = new ClientGcSampler();
        long start = Stopwatch.GetTimestamp();
        _measureFromTicks = start + (long)(workload.Warmup.TotalSeconds * Stopwatch.Frequency);
        long sendUntil = workload.Count > 0 ? long.MaxValue : _measureFromTicks + (long)(workload.Duration.TotalSeconds * Stopwatch.Frequency);
        long perConnectionCount = workload.Count > 0 ? Math.Max(1, workload.Count / workload.Connections) : long.MaxValue;

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task reporter = ReportProgressAsync(target.Name, sampler, stop.Token);
        Task[] senders = [.. Enumerable.Range(0, workload.Connections).Select(c => Task.Run(
            () => workload.OpenLoop ? OpenLoopAsync(target, c, perConnectionCount, sendUntil, cancellationToken) : ClosedLoopAsync(target, c, perConnectionCount, sendUntil, cancellationToken),
            cancellationToken))];
        await Task.WhenAll(senders);
        long sendingEnded = Stopwatch.GetTimestamp();
        sampler.MarkEnd();
        client.MarkEnd();
        clientGc.MarkEnd();

        // Let deliveries catch up with what was acknowledged (bounded: a stuck system must not hang the run).
        long deadline = Stopwatch.GetTimestamp() + (30 * Stopwatch.Frequency);
        while (Interlocked.Read(ref _delivered) < Interlocked.Read(ref _acked) && Stopwatch.GetTimestamp() < deadline)
        {
            await Task.Delay(10, cancellationToken);
        }

        long deliveredEnded = Stopwatch.GetTimestamp();
        await stop.CancelAsync();
        await reporter;
        double seconds = Stopwatch.GetElapsedTime(Math.Min(_measureFromTicks, sendingEnded), Math.Max(sendingEnded, deliveredEnded)).TotalSeconds;
        return new RunResult
        {
            System = target.Name,
            Durability = target.Durability,
            Seconds = seconds,
            Sent = Interlocked.Read(ref _sent),
            Acked = Interlocked.Read(ref _acked),
            Refused = Interlocked.Read(ref _refused),
            Delivered = Interlocked.Read(ref _delivered),
            MessageBytes = workload.MessageBytes,
            MeasuredAcked = Interlocked.Read(ref _measuredAcked),
            MeasuredDelivered = Interlocked.Read(ref _measuredDelivered),
            AckLatency = _ackLatency,
            EndToEndLatency = _endToEnd,
            SendLag = _sendLag,
            ErrorsByCode = new Dictionary<string, long>(_errors),
            ServerPeakRssBytes = sampler.PeakRssBytes,
            ServerCpuCores = sampler.CpuCores,
            ClientCpuCores = client.CpuCores,
            ClientGc = clientGc.Result,
        };
    }

    private async Task ClosedLoopAsync(ILoadTarget target, int connection, long count, long sendUntil, CancellationToken cancellationToken)
    {
        using var window = new SemaphoreSlim(workload.Window);
        for (long i = 0; i < count && Stopwatch.GetTimestamp() < sendUntil; i++)
        {
            await window.WaitAsync(cancellationToken);
            long now = Stopwatch.GetTimestamp();
            Send(target, connection, i, now, window);
        }

        for (int i = 0; i < workload.Window; i++)
        {
            await window.WaitAsync(cancellationToken);
        }
    }

    private async Task OpenLoopAsync(ILoadTarget target, int connection, long count, long sendUntil, CancellationToken cancellationToken)
    {
        // Each connection paces itself on its own thread: a thread can sleep to within the kernel's timer slack,
        // where an awaited timer wakes whole milliseconds late (see PreciseSleep).
        var outstanding = new AsyncCountdown();
        var paced = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var pacer = new Thread(() =>
        {
            try
            {
                Pace(target, connection, count, sendUntil, outstanding, cancellationToken);
                paced.TrySetResult();
            }
            catch (Exception ex)
            {
                paced.TrySetException(ex);
            }
        })
        {
            IsBackground = true,
            Name = $"pacer-{connection}",
        };
        pacer.Start();
        await paced.Task;
        await outstanding.FinishAsync(TimeSpan.FromSeconds(60), cancellationToken);
    }

    private void Pace(ILoadTarget target, int connection, long count, long sendUntil, AsyncCountdown outstanding, CancellationToken cancellationToken)
    {
        double interval = Stopwatch.Frequency * workload.Connections / (double)workload.Rate;
        long first = Stopwatch.GetTimestamp() + (long)(interval * connection / workload.Connections);

        // Wakes at most once a quantum and sends what is due, so that a high rate does not cost a wake-up per message.
        // Sends are late by up to a quantum, never early (that would flatter latency).
        long quantum = (long)(workload.PaceQuantum.TotalSeconds * Stopwatch.Frequency);
        for (long i = 0; i < count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            long intended = first + (long)(i * interval);
            if (intended >= sendUntil)
            {
                break;
            }

            long now = Stopwatch.GetTimestamp();
            if (intended > now)
            {
                PreciseSleep.Until(Math.Max(intended, now + quantum));
            }

            // Latency counts from the intended time, not from when we got round to sending; the lag is reported apart.
            Record(_sendLag, intended);
            outstanding.Add();
            Send(target, connection, i, intended, outstanding);
        }
    }

    private void Send(ILoadTarget target, int connection, long sequence, long intendedTicks, object release)
    {
        // One message in EndToEndSampling carries its intended send time; the rest share one payload, so the load
        // generator does not spend its CPU on allocating and filling buffers.
        byte[] payload = _sharedPayload;
        if (sequence % EndToEndSampling == 0)
        {
            payload = new byte[Math.Max(workload.MessageBytes, HeaderBytes)];
            BinaryPrimitives.WriteUInt64LittleEndian(payload, Marker);
            BinaryPrimitives.WriteInt64LittleEndian(payload.AsSpan(8), intendedTicks);
        }

        int recipient = (int)((sequence * workload.Connections + connection) % workload.Users);
        Interlocked.Increment(ref _sent);
        target.SendAsync(connection, recipient, payload).ContinueWith(
            (t, state) =>
            {
                if (t.IsCompletedSuccessfully)
                {
                    Interlocked.Increment(ref _acked);
                    if (intendedTicks >= _measureFromTicks)
                    {
                        Interlocked.Increment(ref _measuredAcked);
                    }

                    Record(_ackLatency, intendedTicks);
                }
                else
                {
                    Interlocked.Increment(ref _refused);
                    string code = t.Exception?.InnerException is LoadRefusedException refused ? refused.Code : t.Exception?.InnerException?.GetType().Name ?? "CANCELED";
                    _errors.AddOrUpdate(code, 1, (_, n) => n + 1);
                }

                switch (state)
                {
                    case SemaphoreSlim window:
                        window.Release();
                        break;
                    case AsyncCountdown outstanding:
                        outstanding.Signal();
                        break;
                }
            },
            release,
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }

    private void OnDelivered(ReadOnlySpan<byte> payload)
    {
        Interlocked.Increment(ref _delivered);
        if (Stopwatch.GetTimestamp() >= _measureFromTicks)
        {
            Interlocked.Increment(ref _measuredDelivered);
        }

        if (payload.Length >= HeaderBytes && BinaryPrimitives.ReadUInt64LittleEndian(payload) == Marker)
        {
            Record(_endToEnd, BinaryPrimitives.ReadInt64LittleEndian(payload[8..]));
        }
    }

    private void Record(LongHistogram histogram, long intendedTicks)
    {
        if (intendedTicks < _measureFromTicks)
        {
            return; // warm-up
        }

        long latency = Stopwatch.GetElapsedTime(intendedTicks).Ticks;
        lock (histogram)
        {
            histogram.RecordValue(Math.Min(Math.Max(latency, 1), TimeSpan.TicksPerMinute));
        }
    }

    private async Task ReportProgressAsync(string name, ProcessSampler sampler, CancellationToken stop)
    {
        long lastAcked = 0;
        long lastTicks = Stopwatch.GetTimestamp();
        try
        {
            while (true)
            {
                await Task.Delay(1000, stop);
                sampler.Sample();
                long acked = Interlocked.Read(ref _acked);
                long now = Stopwatch.GetTimestamp();
                double rate = (acked - lastAcked) / Stopwatch.GetElapsedTime(lastTicks, now).TotalSeconds;
                progress?.Write($"\r  {name}: {acked:N0} acked, {Interlocked.Read(ref _delivered):N0} delivered, {Interlocked.Read(ref _refused):N0} refused, {rate:N0}/s now   ");
                (lastAcked, lastTicks) = (acked, now);
            }
        }
        catch (OperationCanceledException)
        {
            progress?.Write("\r" + new string(' ', 100) + "\r");
        }
    }
}
