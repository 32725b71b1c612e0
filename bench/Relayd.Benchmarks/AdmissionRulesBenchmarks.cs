using System.Buffers;
using System.Text;
using BenchmarkDotNet.Attributes;
using Google.Protobuf;
using Relayd.Admission;
using Relayd.Interop.Consent;
using Relayd.Interop.RateLimits;
using Relayd.Protocol.V1;
using Relayd.Routing;

namespace Relayd.Benchmarks;

/// <summary>
/// The admission pipeline of an envelope alone (both steps, <c>Admit</c> and <c>AdmitNew</c>), with the interop rules
/// off, opt-in only, rate limits only (every bucket checked at rates no run reaches) or both: what the rules cost per
/// envelope in nanoseconds, without the log, the queue or TLS around it (HotPathBenchmarks has those). 64 recipient
/// users, one sender user, as the load generator sends.
/// </summary>
[MemoryDiagnoser]
public class AdmissionRulesBenchmarks
{
    private const int Users = 64;

    private AdmissionPipeline _pipeline = null!;
    private PartnerInfo _alpha = null!;
    private PartnerInfo _beta = null!;
    private byte[] _sender = null!;
    private byte[][] _recipients = null!;
    private byte[] _alphaUtf8 = null!;

    [Params("off", "opt-in", "rate-limits", "both")]
    public string Rules { get; set; } = "off";

    [GlobalSetup]
    public void Setup()
    {
        var options = new RelayOptions();
        options.Partners.Add(new PartnerOptions { Id = "alpha" });
        options.Partners.Add(new PartnerOptions { Id = "beta" });
        options.Interop.UseBenchmarkRates();

        // One sender user at this benchmark's pace (tens of millions a second) is over the load generator's rates.
        options.Interop.PartnerEnvelopesPerSecond = InteropOptions.MaxRate;
        options.Interop.UserEnvelopesPerSecond = InteropOptions.MaxRate;
        options.Interop.UserEnvelopeBurst = InteropOptions.MaxRate;
        var directory = new PartnerDirectory(options);
        _alpha = directory.Find("alpha")!;
        _beta = directory.Find("beta")!;
        _alphaUtf8 = Encoding.UTF8.GetBytes("alpha");
        _sender = Encoding.UTF8.GetBytes("alice");
        _recipients = [.. Enumerable.Range(0, Users).Select(i => Encoding.UTF8.GetBytes("user-" + i))];

        bool optIn = Rules is "opt-in" or "both";
        bool rates = Rules is "rate-limits" or "both";
        var consent = new ConsentTable(optIn, seed: 20261202);
        consent.Apply("alpha", Grants([_sender]));
        consent.Apply("beta", Grants(_recipients));
        IRateLimiter limiter = rates ? new RateLimiter(options.Interop, TimeProvider.System) : NoRateLimits.Instance;
        _pipeline = AdmissionPipelines.Envelopes(options.Limits, new InteropPolicy(consent, limiter));
    }

    [Benchmark(OperationsPerInvoke = Users)]
    public int AdmitEnvelope()
    {
        int admitted = 0;
        long now = 1_765_000_000_000;
        for (int i = 0; i < Users; i++)
        {
            var request = new AdmissionRequest
            {
                Subject = AdmissionSubject.Envelope,
                Sender = _alpha,
                SenderPartnerUtf8 = new ReadOnlySequence<byte>(_alphaUtf8),
                MessageIdLength = 16,
                RecipientUserEmpty = false,
                Recipient = _beta,
                ContentKind = (int)ContentKind.Text,
                SenderUser = new ReadOnlySequence<byte>(_sender),
                RecipientUser = new ReadOnlySequence<byte>(_recipients[i]),
                Bytes = 16, // the byte bucket's top rate (1 GB/s) is below what 1 KiB at this pace would need
                RecipientFrameBytes = 1200,
                NowMs = now,
            };
            if (_pipeline.Admit(request, out _) && _pipeline.AdmitNew(request, out _))
            {
                admitted++;
            }
        }

        return admitted == Users ? admitted : throw new InvalidOperationException($"only {admitted} of {Users} admitted: the benchmark measures refusals");
    }

    private static ConsentUpdate Grants(IEnumerable<byte[]> users)
    {
        var update = new ConsentUpdate();
        foreach (byte[] user in users)
        {
            update.Changes.Add(new ConsentChange { User = ByteString.CopyFrom(user), Action = ConsentAction.ConsentGrant });
        }

        return update;
    }
}
