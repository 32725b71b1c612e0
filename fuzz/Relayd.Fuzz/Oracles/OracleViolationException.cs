namespace Relayd.Fuzz.Oracles;

/// <summary>
/// A reader did something its contract rules out: it disagreed with the reference decoder or with Google.Protobuf,
/// or broke one of its own guarantees. Like any unexpected exception escaping an oracle, this is a fuzzing crash.
/// </summary>
public sealed class OracleViolationException : Exception
{
    public OracleViolationException() { }

    public OracleViolationException(string message) : base(message) { }

    public OracleViolationException(string message, Exception inner) : base(message, inner) { }
}
