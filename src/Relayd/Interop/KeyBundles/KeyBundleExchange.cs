using System.Buffers;
using Relayd.Admission;
using Relayd.Protocol.V1;
using Relayd.Routing;

namespace Relayd.Interop.KeyBundles;

/// <summary>
/// Routes key-bundle requests to the target partner and its answers back, live: the relay keeps which session asked
/// (a pending entry per (requester partner, request id)), never a request's or a bundle's bytes, so a one-time prekey
/// can never be served twice from here. Every admitted request gets exactly one answer: the target's, or
/// KEY_BUNDLE_TIMEOUT from one shared sweep when the target has no session, a full outbox or no answer in time.
/// Thread-safe: requests come from requesters' readers, answers from targets' readers, timeouts from the sweep.
/// </summary>
internal sealed class KeyBundleExchange : IDisposable
{
    private readonly PartnerDirectory _partners;
    private readonly AdmissionPipeline _admission;
    private readonly TimeProvider _clock;
    private readonly TimeSpan _timeout;
    private readonly int _maxBundleBytes;
    private readonly int _pendingPerPartner;
    private readonly Lock _lock = new();
    private readonly Dictionary<PendingKey, PendingRequest> _pending = [];
    private readonly Dictionary<string, int> _pendingByPartner = new(StringComparer.Ordinal);
    private readonly ITimer _sweep;
    private long _timedOut;
    private long _lateAnswers;
    private long _undeliverable;
    private readonly Routing.SupportEvents _support;

    public KeyBundleExchange(PartnerDirectory partners, InteropPolicy interop, InteropOptions options, TimeProvider clock, Routing.SupportEvents? support = null)
    {
        _support = support ?? Routing.SupportEvents.None;
        _partners = partners;
        _admission = AdmissionPipelines.KeyBundleRequest(interop);
        _clock = clock;
        _timeout = options.KeyBundleTimeout;
        _maxBundleBytes = options.KeyBundleMaxBytes;
        _pendingPerPartner = options.KeyBundlePendingPerPartner;

        // One timer for every request: a tenth of the timeout keeps answers close to it without a timer per request.
        TimeSpan period = TimeSpan.FromMilliseconds(Math.Clamp(_timeout.TotalMilliseconds / 10, 5, 500));
        _sweep = clock.CreateTimer(static state => ((KeyBundleExchange)state!).Sweep(), this, period, period);
    }

    /// <summary>Requests waiting for the target's answer now.</summary>
    public int PendingCount
    {
        get
        {
            lock (_lock)
            {
                return _pending.Count;
            }
        }
    }

    /// <summary>Requests answered KEY_BUNDLE_TIMEOUT by the relay since it started.</summary>
    public long TimedOut => Interlocked.Read(ref _timedOut);

    /// <summary>Answers that matched no pending request (late, after the timeout, or never asked) and were dropped.</summary>
    public long LateAnswers => Interlocked.Read(ref _lateAnswers);

    /// <summary>Answers (the target's or the relay's) the requester's session could not take (closed or outbox full).</summary>
    public long Undeliverable => Interlocked.Read(ref _undeliverable);

    /// <summary>
    /// Admits <paramref name="request"/> from <paramref name="requester"/> and forwards it to a live session of the
    /// target partner. Returns the relay's answer when it refuses the request at once (the requester's reader writes
    /// it); null when the request is pending (its answer comes later: the target's, or a timeout).
    /// </summary>
    public KeyBundleResponse? Request(ILiveSession requester, KeyBundleRequest request, ILiveSessions sessions)
    {
        KeyBundleResponse? answer = Forward(requester, request, sessions);
        if (!_support.IsEmpty)
        {
            // Refused at once: the relay answered (its code); else forwarded (or pending for a target without a session).
            _support.KeyBundleEvent(requester.Partner, _partners.Find(request.TargetPartner), request.RequestId,
                answer is null ? Routing.KeyBundleEventKind.Forwarded : Routing.KeyBundleEventKind.Answered,
                answer?.Code ?? ErrorCode.Unspecified, _clock.GetUtcNow().ToUnixTimeMilliseconds());
        }

        return answer;
    }

    private KeyBundleResponse? Forward(ILiveSession requester, KeyBundleRequest request, ILiveSessions sessions)
    {
        if (request.RequesterUser.IsEmpty || request.TargetUser.IsEmpty)
        {
            return Refusal(request, ErrorCode.InvalidRequest, request.RequesterUser.IsEmpty ? "requester_user is empty" : "target_user is empty");
        }

        PartnerInfo? target = _partners.Find(request.TargetPartner);
        var admission = new AdmissionRequest
        {
            Subject = AdmissionSubject.KeyBundleRequest,
            Sender = requester.Partner,
            SenderPartnerText = request.RequesterPartner,
            Recipient = target,
            RecipientPartnerText = request.TargetPartner,
            SenderUser = new ReadOnlySequence<byte>(request.RequesterUser.Memory),
            RecipientUser = new ReadOnlySequence<byte>(request.TargetUser.Memory),
            NowMs = _clock.GetUtcNow().ToUnixTimeMilliseconds(),
        };
        if (!_admission.Admit(admission, out AdmissionRefusal refusal))
        {
            return Refusal(request, refusal.Code, refusal.Detail, refusal.RetryAfterMs);
        }

        // Admitted: the RecipientRule refused a null target.
        var key = new PendingKey(requester.Partner.Id, request.RequestId);
        var pending = new PendingRequest(requester, target!, _clock.GetTimestamp() + ToTimestampTicks(_timeout));
        lock (_lock)
        {
            if (_pending.ContainsKey(key))
            {
                return Refusal(request, ErrorCode.InvalidRequest, $"request_id {request.RequestId} is already waiting for an answer; use a new id per request");
            }

            int waiting = _pendingByPartner.GetValueOrDefault(key.RequesterPartner);
            if (waiting >= _pendingPerPartner)
            {
                return Refusal(request, ErrorCode.RateLimited, $"partner '{key.RequesterPartner}' already has {waiting} key-bundle requests waiting for an answer ([interop] key_bundle_pending_per_partner)", (uint)_timeout.TotalMilliseconds);
            }

            _pending.Add(key, pending);
            _pendingByPartner[key.RequesterPartner] = waiting + 1;
        }

        // Outside the lock: the target's outbox is its own. Without a session (or room in its outbox) the request
        // stays pending and times out like one the target does not answer: one rule for the requester either way.
        ILiveSession? session = sessions.AnyLiveSessionOf(target!);
        if (session is null)
        {
            pending.Undelivered = $"partner '{target!.Id}' has no session";
        }
        else if (!session.TryEnqueueFrame(new Frame { KeyBundleRequest = request }))
        {
            pending.Undelivered = $"partner '{target!.Id}' is not reading its frames";
        }

        return null;
    }

    /// <summary>
    /// Matches the target's <paramref name="response"/> with its request and forwards it to the requesting session,
    /// with target_partner set. Returns an Error for the answering session when it is refused (it answers a request
    /// made to another partner, or its bundle is too large); null otherwise, also when the answer came too late (then it
    /// is dropped and counted).
    /// </summary>
    public Error? Answer(ILiveSession target, KeyBundleResponse response)
    {
        var key = new PendingKey(response.RequesterPartner, response.RequestId);
        PendingRequest? pending;
        lock (_lock)
        {
            if (!_pending.TryGetValue(key, out pending))
            {
                Interlocked.Increment(ref _lateAnswers);
                return null;
            }

            if (!ReferenceEquals(pending.Target, target.Partner))
            {
                // The request stays pending: the partner it was made to can still answer.
                return new Error
                {
                    Code = ErrorCode.SenderMismatch,
                    Detail = $"key-bundle request {response.RequestId} of partner '{response.RequesterPartner}' was not made to partner '{target.Partner.Id}'",
                    RequestId = response.RequestId,
                };
            }

            Remove(key);
        }

        response.TargetPartner = target.Partner.Id;
        Error? refusal = null;
        if (response.Bundle.Length > _maxBundleBytes)
        {
            string detail = $"the key bundle of partner '{target.Partner.Id}' is {response.Bundle.Length} bytes; the relay forwards at most {_maxBundleBytes} ([interop] key_bundle_max_bytes)";
            response = new KeyBundleResponse
            {
                RequestId = response.RequestId,
                RequesterPartner = response.RequesterPartner,
                TargetPartner = target.Partner.Id,
                Code = ErrorCode.KeyBundleTooLarge,
                Detail = detail,
            };
            refusal = new Error { Code = ErrorCode.KeyBundleTooLarge, Detail = detail, RequestId = response.RequestId };
        }

        Deliver(pending.Requester, response);
        if (!_support.IsEmpty)
        {
            _support.KeyBundleEvent(pending.Requester.Partner, target.Partner, response.RequestId, Routing.KeyBundleEventKind.Answered, response.Code, _clock.GetUtcNow().ToUnixTimeMilliseconds());
        }

        return refusal;
    }

    /// <summary>Answers KEY_BUNDLE_TIMEOUT to what waited too long, and forgets what closed sessions asked.</summary>
    internal void Sweep()
    {
        long now = _clock.GetTimestamp();
        List<(PendingKey Key, PendingRequest Request)>? expired = null;
        lock (_lock)
        {
            foreach ((PendingKey key, PendingRequest request) in _pending)
            {
                if (request.Requester.IsClosing || now >= request.DeadlineTimestamp)
                {
                    // A list of its own per sweep: timer callbacks may overlap. Only when something expired.
                    (expired ??= []).Add((key, request));
                }
            }

            if (expired is null)
            {
                return;
            }

            foreach ((PendingKey key, _) in expired)
            {
                Remove(key);
            }
        }

        foreach ((PendingKey key, PendingRequest request) in expired)
        {
            if (request.Requester.IsClosing)
            {
                continue;
            }

            Interlocked.Increment(ref _timedOut);
            if (!_support.IsEmpty)
            {
                _support.KeyBundleEvent(request.Requester.Partner, request.Target, key.RequestId, Routing.KeyBundleEventKind.TimedOut, ErrorCode.KeyBundleTimeout, _clock.GetUtcNow().ToUnixTimeMilliseconds());
            }

            string why = request.Undelivered ?? $"partner '{request.Target.Id}' did not answer";
            Deliver(request.Requester, new KeyBundleResponse
            {
                RequestId = key.RequestId,
                RequesterPartner = key.RequesterPartner,
                TargetPartner = request.Target.Id,
                Code = ErrorCode.KeyBundleTimeout,
                Detail = $"{why} within {_timeout.TotalMilliseconds} ms ([interop] key_bundle_timeout_ms)",
            });
        }
    }

    public void Dispose() => _sweep.Dispose();

    private void Deliver(ILiveSession requester, KeyBundleResponse response)
    {
        if (!requester.TryEnqueueFrame(new Frame { KeyBundleResponse = response }))
        {
            Interlocked.Increment(ref _undeliverable);
        }
    }

    // Under _lock.
    private void Remove(PendingKey key)
    {
        _pending.Remove(key);
        int left = _pendingByPartner[key.RequesterPartner] - 1;
        if (left == 0)
        {
            _pendingByPartner.Remove(key.RequesterPartner);
        }
        else
        {
            _pendingByPartner[key.RequesterPartner] = left;
        }
    }

    private long ToTimestampTicks(TimeSpan span) => (long)(span.TotalSeconds * _clock.TimestampFrequency);

    private static KeyBundleResponse Refusal(KeyBundleRequest request, ErrorCode code, string detail, uint retryAfterMs = 0) => new()
    {
        RequestId = request.RequestId,
        RequesterPartner = request.RequesterPartner,
        TargetPartner = request.TargetPartner,
        Code = code,
        Detail = detail,
        RetryAfterMs = retryAfterMs,
    };

    private readonly record struct PendingKey(string RequesterPartner, ulong RequestId);

    private sealed class PendingRequest(ILiveSession requester, PartnerInfo target, long deadlineTimestamp)
    {
        public ILiveSession Requester { get; } = requester;

        public PartnerInfo Target { get; } = target;

        public long DeadlineTimestamp { get; } = deadlineTimestamp;

        /// <summary>Why the request never reached the target (no session, full outbox); null once forwarded.</summary>
        public volatile string? Undelivered;
    }
}
