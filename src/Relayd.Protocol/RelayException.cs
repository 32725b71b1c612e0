using Relayd.Protocol.V1;

namespace Relayd.Protocol;

/// <summary>A refusal or failure that carries one of the protocol's <see cref="ErrorCode"/>s.</summary>
public sealed class RelayException : Exception
{
    /// <summary>A refusal with <paramref name="code"/>; the message names the code as relayd.proto does (e.g. <c>SHUTTING_DOWN: …</c>).</summary>
    public RelayException(ErrorCode code, string detail, uint retryAfterMs = 0, Exception? inner = null)
        : base($"{ProtoNames.Of(code)}: {detail}", inner)
    {
        Code = code;
        Detail = detail;
        RetryAfterMs = retryAfterMs;
    }

    public RelayException() : this(ErrorCode.Internal, "unspecified") { }

    public RelayException(string message) : this(ErrorCode.Internal, message) { }

    public RelayException(string message, Exception inner) : this(ErrorCode.Internal, message, 0, inner) { }

    /// <summary>Why the relay or the peer refused.</summary>
    public ErrorCode Code { get; }

    /// <summary>Human-readable detail; never contains ciphertext.</summary>
    public string Detail { get; }

    /// <summary>When retrying helps: wait at least this many milliseconds. 0 when it does not.</summary>
    public uint RetryAfterMs { get; }

    /// <summary>Builds the exception a received <see cref="Error"/> frame stands for.</summary>
    public static RelayException FromError(Error error) => new(error.Code, error.Detail, error.RetryAfterMs);
}
