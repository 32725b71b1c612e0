namespace Relayd.Diagnostics.Prometheus;

/// <summary>What <c>/healthz</c> and <c>/readyz</c> ask the relay (its composition root answers).</summary>
internal interface IRelayProbe
{
    /// <summary>Null while the process is alive and its write-ahead log writable (not failed, not full); else why not.</summary>
    string? HealthProblem();

    /// <summary>Null once recovery is done and the listener accepts, until draining or stopping begins; else why not.</summary>
    string? NotReadyReason();
}
