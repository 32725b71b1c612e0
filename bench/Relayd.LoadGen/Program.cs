using System.CommandLine;
using Relayd.LoadGen;
using Relayd.LoadGen.Output;
using Relayd.LoadGen.Peers;
using Relayd.LoadGen.Targets;
using Relayd.Security;

ClientSocketCompletions.PreferInline(); // before any socket exists: the runtime reads it once

var relay = new Option<string?>("--relay") { Description = "host:port of a running relay; default: start one (relayd dev) with a fresh dev PKI" };
var pki = new Option<DirectoryInfo?>("--pki") { Description = "Dev PKI directory (with --relay: the one that relay uses); default: a temporary one" };
var relayPid = new Option<int?>("--relay-pid") { Description = "Pid of the running relay given with --relay, for RSS/CPU figures" };
var partners = new Option<int>("--partners") { Description = "Partners P, at least 2 (each sends to the next)", DefaultValueFactory = _ => 2 };
var connections = new Option<int>("--connections") { Description = "Sending connections per partner (peers get the same total)", DefaultValueFactory = _ => 1 };
var size = new Option<int>("--size") { Description = "Message (ciphertext) bytes", DefaultValueFactory = _ => 1024 };
var count = new Option<long>("--count") { Description = "Messages to send in all, warm-up included (0: use --duration)", DefaultValueFactory = _ => 0 };
var duration = new Option<double>("--duration") { Description = "Seconds to send after warm-up", DefaultValueFactory = _ => 10 };
var warmup = new Option<double>("--warmup") { Description = "Warm-up seconds (sent, not measured)", DefaultValueFactory = _ => 2 };
var window = new Option<int>("--window") { Description = "Closed loop: unacknowledged messages per connection", DefaultValueFactory = _ => 1024 };
var rate = new Option<int>("--rate") { Description = "Open loop: messages per second in all (latency from intended send time); 0 = closed loop", DefaultValueFactory = _ => 0 };
var paceMicroseconds = new Option<int>("--pace-us") { Description = "Open loop: each connection's pacer wakes at most every this many µs and sends what is due (late by up to that, never early; counted in ack latency)", DefaultValueFactory = _ => 1000 };
var users = new Option<int>("--users") { Description = "Recipient users (conversations)", DefaultValueFactory = _ => 64 };
var rateLimits = new Option<string>("--rate-limits")
{
    Description = "The started relay's rate limits: bench (all on, at rates this load cannot reach), off (the limits-off comparison), defaults (cut at 20 msg/s per user: this sends from one user per partner)",
    DefaultValueFactory = _ => "bench",
};
rateLimits.AcceptOnlyFromAmong("bench", "off", "defaults");
var relayArgs = new Option<string[]>("--relay-arg")
{
    Description = "One more argument for the relayd dev this starts (repeat it; e.g. --relay-arg=--no-trace): what an on/off comparison switches",
    AllowMultipleArgumentsPerToken = false,
};
var relaydExecutable = new Option<FileInfo?>("--relayd")
{
    Description = "The relayd executable to start, e.g. the NativeAOT publish that is packaged (bench/README.md says how to build it); default: the JIT'd relayd.dll beside the load generator, run with dotnet",
};
var noSync = new Option<bool>("--no-sync") { Description = "Start relayd with its write-ahead log not fdatasync'ed (acks survive a relay crash, not a power loss): the non-durable ceiling" };
var peers = new Option<string?>("--peers") { Description = "Also run the same workload against: nats, redis (comma-separated; needs Debian nats-server / redis-server)" };
var json = new Option<string?>("--json") { Description = "Write results as JSON to FILE ('-' = stdout)" };
var csv = new Option<string?>("--csv") { Description = "Write results as CSV to FILE" };
var media = new Option<string?>("--media") { Description = "Media mode: send blobs of SIZE (e.g. 300KiB, 64MiB, 1GiB) partner-0 -> partner-1 and report MiB/s and relay RSS growth" };
var backlog = new Option<long>("--backlog") { Description = "Backlog mode: partner-0 sends COUNT envelopes (--size, --users) to partner-1 while it is offline, then partner-1 connects and drains them; reports fill and drain msg/s", DefaultValueFactory = _ => 0 };
var mediaCount = new Option<int>("--media-count") { Description = "Media mode: blobs to send one after another", DefaultValueFactory = _ => 1 };
var optIn = new Option<bool>("--opt-in") { Description = "Register consent (ConsentUpdate) for every user before the run, and start relayd requiring it (its default); --opt-in false: neither (relayd dev --no-opt-in)", DefaultValueFactory = _ => true };
var plotFile = new Option<string?>("--plot") { Description = "Draw ack-latency percentile curves to FILE.png or FILE.svg" };
var root = new RootCommand("relayd load generator: end-to-end throughput and latency of relayd, optionally beside NATS and Redis")
{
    relay, pki, relayPid, partners, connections, size, count, duration, warmup, window, rate, paceMicroseconds, users, noSync, rateLimits, relayArgs, relaydExecutable, peers, json, csv, plotFile, media, mediaCount, backlog, optIn,
};
var scalingCsv = new Argument<FileInfo>("csv") { Description = "The CSV bench/scaling.sh writes: series,value,acked_per_second,relay_us_per_message" };
var scalingOut = new Argument<string>("prefix") { Description = "Output prefix: writes PREFIX-<series>.svg and .png for each series" };
var scalingPlot = new Command("plot-scaling", "Draw bench/scaling.sh's curves (an SVG and a PNG per series) from its CSV") { scalingCsv, scalingOut };
scalingPlot.SetAction(parse =>
{
    try
    {
        Relayd.LoadGen.Output.ScalingPlot.Save(parse.GetValue(scalingCsv)!.FullName, parse.GetValue(scalingOut)!);
        return 0;
    }
    catch (Exception ex) when (ex is IOException or FormatException or IndexOutOfRangeException)
    {
        Console.Error.WriteLine($"relayd-loadgen: plot-scaling: {ex.Message} ({ex.GetType().Name})");
        return 1;
    }
});
root.Add(scalingPlot);
root.SetAction(async (parse, cancellationToken) =>
{
    var workload = new Workload(
        parse.GetValue(size), parse.GetValue(count), TimeSpan.FromSeconds(parse.GetValue(duration)), parse.GetValue(window), parse.GetValue(rate),
        Math.Max(1, parse.GetValue(connections)) * Math.Max(2, parse.GetValue(partners)), Math.Max(1, parse.GetValue(users)), TimeSpan.FromSeconds(parse.GetValue(warmup)))
    {
        PaceQuantum = TimeSpan.FromMicroseconds(Math.Max(1, parse.GetValue(paceMicroseconds))),
    };
    bool temporaryPki = parse.GetValue(pki) is null;
    string pkiDirectory = parse.GetValue(pki)?.FullName ?? Directory.CreateTempSubdirectory("relayd-loadgen-").FullName;
    try
    {
        return await RunAsync(parse, workload, pkiDirectory, cancellationToken);
    }
    catch (Exception ex) when (ex is not OperationCanceledException)
    {
        // A run that cannot start or goes wrong (no partner certificate, relay unreachable, a peer that will not start)
        // says what in one line; the stack trace is for bugs, and the type names which kind it was.
        await Console.Error.WriteLineAsync($"relayd-loadgen: {ex.Message} ({ex.GetType().Name})");
        return 1;
    }
    finally
    {
        if (temporaryPki)
        {
            Directory.Delete(pkiDirectory, recursive: true); // the relay's write-ahead log lives in it too
        }
    }
});
return await root.Parse(args).InvokeAsync();

async Task<int> RunAsync(ParseResult parse, Workload workload, string pkiDirectory, CancellationToken cancellationToken)
{
    var devPki = new DevPki(pkiDirectory);
    string? relaydPath = parse.GetValue(relaydExecutable)?.FullName;
    if (relaydPath is not null && !File.Exists(relaydPath))
    {
        throw new FileNotFoundException($"--relayd {relaydPath}: no such file");
    }

    if (parse.GetValue(relay) is null)
    {
        devPki.Init();
    }

    if (parse.GetValue(media) is { } mediaSize)
    {
        return await Relayd.LoadGen.Media.MediaRun.RunAsync(devPki, parse.GetValue(relay), parse.GetValue(relayPid), Relayd.LoadGen.Media.MediaRun.ParseSize(mediaSize), Math.Max(1, parse.GetValue(mediaCount)), Console.Out, cancellationToken, parse.GetValue(optIn), parse.GetValue(rateLimits)!, relaydPath);
    }

    if (parse.GetValue(backlog) is > 0 and long backlogCount)
    {
        return await Relayd.LoadGen.Backlog.BacklogRun.RunAsync(devPki, parse.GetValue(relay), parse.GetValue(relayPid), backlogCount, parse.GetValue(size), parse.GetValue(users), Console.Out, parse.GetValue(optIn), parse.GetValue(rateLimits)!, relaydPath, cancellationToken);
    }

    bool toStdout = parse.GetValue(json) == "-";
    TextWriter log = toStdout ? Console.Error : Console.Out;
    var targets = new List<Func<ILoadTarget>> { () => new RelaydTarget(devPki, parse.GetValue(relay), parse.GetValue(partners), parse.GetValue(relayPid), sync: !parse.GetValue(noSync), rateLimits: parse.GetValue(rateLimits)!, optIn: parse.GetValue(optIn), extraRelayArgs: parse.GetValue(relayArgs) ?? [], relaydExecutable: relaydPath) };
    if (parse.GetValue(peers) is { Length: > 0 } peerNames)
    {
        devPki.Init();
        if (!devPki.HasPartner("peer-client"))
        {
            devPki.IssuePartner("peer-client");
        }

        var peerPki = new PeerPki(devPki.CaCertPath, devPki.ServerCertPath, devPki.ServerKeyPath, devPki.PartnerCertPath("peer-client"), devPki.PartnerKeyPath("peer-client"));
        string[] names = peerNames.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        int peerCount = PeerFactory.Create(names, peerPki).Count;
        for (int i = 0; i < peerCount; i++)
        {
            int index = i;
            targets.Add(() => PeerFactory.Create(names, peerPki)[index]);
        }
    }

    log.WriteLine($"workload: {Report.Describe(workload)}");
    var results = new List<RunResult>();
    foreach (Func<ILoadTarget> create in targets)
    {
        await using ILoadTarget target = create();
        log.WriteLine($"running {target.Name} ({target.Durability}) ...");
        // The \r progress line only makes sense on a terminal.
        TextWriter? progress = (toStdout ? Console.IsErrorRedirected : Console.IsOutputRedirected) ? null : log;
        RunResult result = await new LoadDriver(workload, progress).RunAsync(target, cancellationToken);
        if (target is IToolChecked checkable)
        {
            result.Check = await checkable.CheckAsync(workload, result.AckedPerSecond, cancellationToken);
            log.WriteLine(result.Check?.Describe() ?? $"check: {target.Name}'s own benchmark tool is not installed; its figures are unchecked");
        }

        results.Add(result);
    }

    var report = new Report(workload, results, $"{Environment.ProcessorCount} cores, {Environment.OSVersion.VersionString}, .NET {Environment.Version}");
    log.Write(report.ToTable());
    if (parse.GetValue(json) is { } jsonPath)
    {
        if (toStdout)
        {
            Console.Out.WriteLine(report.ToJson());
        }
        else
        {
            await File.WriteAllTextAsync(jsonPath, report.ToJson(), cancellationToken);
        }
    }

    if (parse.GetValue(csv) is { } csvPath)
    {
        await File.WriteAllTextAsync(csvPath, report.ToCsv(), cancellationToken);
    }

    if (parse.GetValue(plotFile) is { } plotPath)
    {
        LatencyPlot.Save(results, Report.Describe(workload), plotPath);
        log.WriteLine($"plot: {plotPath}");
    }

    return 0;
}
