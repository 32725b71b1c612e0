using System.Threading.Channels;
using Google.Protobuf;
using Relayd.Protocol.V1;

namespace Relayd.Protocol;

/// <summary>
/// Key bundles (docs/protocol.md, "Key bundles"): a requester asks for a user's bundle and awaits the answer; the
/// target partner reads incoming requests and answers each with a bundle or a status. The relay keeps no copy.
/// </summary>
public sealed partial class RelayClient
{
    /// <summary>Requests buffered for the application; more are left unanswered (the relay times them out).</summary>
    private const int KeyBundleRequestBuffer = 1024;

    private readonly Dictionary<ulong, TaskCompletionSource<KeyBundleResponse>> _pendingKeyBundles = [];
    private readonly Channel<KeyBundleRequest> _keyBundleRequests = Channel.CreateBounded<KeyBundleRequest>(
        new BoundedChannelOptions(KeyBundleRequestBuffer) { SingleWriter = true, FullMode = BoundedChannelFullMode.DropWrite });
    private long _nextKeyBundleRequestId;

    /// <summary>
    /// Asks <paramref name="targetPartner"/> (through the relay) for the key bundle of <paramref name="targetUser"/>, so
    /// that <paramref name="requesterUser"/> of this partner can start an end-to-end encrypted session. Completes with
    /// the answer carrying the bundle (<see cref="KeyBundleResponse.Bundle"/>, <see cref="KeyBundleResponse.TargetPartner"/>).
    /// </summary>
    /// <exception cref="RelayException">No bundle: KEY_BUNDLE_NO_COMPATIBLE_MATERIAL or KEY_BUNDLE_EXHAUSTED from the target,
    /// or from the relay NOT_OPTED_IN, RATE_LIMITED (<see cref="RelayException.RetryAfterMs"/>), KEY_BUNDLE_TIMEOUT,
    /// KEY_BUNDLE_TOO_LARGE, UNKNOWN_RECIPIENT_PARTNER, INVALID_REQUEST; or the connection ended.</exception>
    public async Task<KeyBundleResponse> RequestKeyBundleAsync(ReadOnlyMemory<byte> requesterUser, string targetPartner, ReadOnlyMemory<byte> targetUser, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(targetPartner);
        if (_failure is { } failure)
        {
            throw failure;
        }

        ulong id = (ulong)Interlocked.Increment(ref _nextKeyBundleRequestId);
        var pending = new TaskCompletionSource<KeyBundleResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_pendingKeyBundles)
        {
            _pendingKeyBundles.Add(id, pending);
        }

        var request = new KeyBundleRequest
        {
            RequestId = id,
            RequesterPartner = PartnerId,
            RequesterUser = ByteString.CopyFrom(requesterUser.Span),
            TargetPartner = targetPartner,
            TargetUser = ByteString.CopyFrom(targetUser.Span),
        };
        try
        {
            WriteInteropFrame(new Frame { KeyBundleRequest = request });
            KeyBundleResponse response = await AnswerOrEndAsync(pending.Task, cancellationToken);
            return response.Code == ErrorCode.Unspecified
                ? response
                : throw new RelayException(response.Code, response.Detail, response.RetryAfterMs);
        }
        finally
        {
            lock (_pendingKeyBundles)
            {
                _pendingKeyBundles.Remove(id);
            }
        }
    }

    /// <summary>
    /// Key-bundle requests other partners' users make for this partner's users. Answer each with
    /// <see cref="RespondKeyBundleAsync"/> (or <see cref="DeclineKeyBundleAsync"/>) before the relay's timeout; at most 1024 wait here, later ones go unanswered until the application reads.
    /// </summary>
    public IAsyncEnumerable<KeyBundleRequest> ReadKeyBundleRequestsAsync(CancellationToken cancellationToken = default) =>
        _keyBundleRequests.Reader.ReadAllAsync(cancellationToken);

    /// <summary>Answers <paramref name="request"/> with <paramref name="bundle"/> (opaque to the relay, forwarded, never stored).</summary>
    public ValueTask RespondKeyBundleAsync(KeyBundleRequest request, ReadOnlyMemory<byte> bundle, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return Respond(request, ErrorCode.Unspecified, ByteString.CopyFrom(bundle.Span));
    }

    /// <summary>
    /// Answers <paramref name="request"/> without a bundle: <paramref name="status"/> is KEY_BUNDLE_NO_COMPATIBLE_MATERIAL
    /// or KEY_BUNDLE_EXHAUSTED (the MIMI keyMaterial statuses).
    /// </summary>
    public ValueTask DeclineKeyBundleAsync(KeyBundleRequest request, ErrorCode status, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return status is ErrorCode.KeyBundleNoCompatibleMaterial or ErrorCode.KeyBundleExhausted
            ? Respond(request, status, ByteString.Empty)
            : throw new ArgumentOutOfRangeException(nameof(status), status, "a key-bundle status is KEY_BUNDLE_NO_COMPATIBLE_MATERIAL or KEY_BUNDLE_EXHAUSTED");
    }

    private ValueTask Respond(KeyBundleRequest request, ErrorCode status, ByteString bundle)
    {
        if (_failure is { } failure)
        {
            return ValueTask.FromException(failure);
        }

        WriteInteropFrame(new Frame
        {
            KeyBundleResponse = new KeyBundleResponse { RequestId = request.RequestId, RequesterPartner = request.RequesterPartner, Code = status, Bundle = bundle },
        });
        return ValueTask.CompletedTask;
    }

    private ValueTask OnKeyBundleRequestAsync(KeyBundleRequest request, CancellationToken cancellationToken)
    {
        // Never waits: a full buffer leaves the request unanswered (the relay answers the requester KEY_BUNDLE_TIMEOUT)
        // rather than stopping every other frame of the connection.
        _keyBundleRequests.Writer.TryWrite(request);
        return ValueTask.CompletedTask;
    }

    private void OnKeyBundleResponse(KeyBundleResponse response)
    {
        TaskCompletionSource<KeyBundleResponse>? pending;
        lock (_pendingKeyBundles)
        {
            _pendingKeyBundles.TryGetValue(response.RequestId, out pending);
        }

        pending?.TrySetResult(response);
    }

    /// <summary>The answer, or the reason the connection ended before it came.</summary>
    private async Task<T> AnswerOrEndAsync<T>(Task<T> answer, CancellationToken cancellationToken)
    {
        Task first = await Task.WhenAny(answer, Completion).WaitAsync(cancellationToken).ConfigureAwait(false);
        if (first == answer || answer.IsCompleted)
        {
            return await answer.ConfigureAwait(false);
        }

        throw _failure ?? new RelayException(ErrorCode.ShuttingDown, "the connection closed before the relay answered");
    }
}
