using System.Net;
using Relayd.Protocol.V1;
using Tomlyn.Parsing;
using Tomlyn.Syntax;

namespace Relayd.Hosting;

/// <summary>
/// Reads <see cref="RelayOptions"/> from a TOML file. Every problem is reported with its key path and 1-based line,
/// which is why this walks Tomlyn's syntax tree (it keeps positions) rather than deserializing into a model.
/// </summary>
/// <remarks>
/// Tables <c>[relay]</c>, <c>[tls]</c>, <c>[limits]</c>, <c>[wal]</c>, <c>[media]</c>, <c>[metrics]</c>, <c>[control]</c>, <c>[interop]</c>, <c>[health]</c>, <c>[trace]</c>, <c>[evidence]</c> and <c>[[partners]]</c>; the keys
/// are those of <see cref="Setters"/>, each setting one property of <see cref="RelayOptions"/>, whose doc comment
/// gives its meaning, range and default. <c>packaging/relayd.toml</c> shows every key with its default and unit
/// (ConfigKeyTableTests keeps the two in step). Durations are integers in the unit the key names (<c>_ms</c>,
/// <c>_seconds</c>, <c>_us</c>); relative paths are relative to the file's directory. After the keys,
/// <see cref="RelayOptions.Check"/> runs the checks on the whole tree (listen address, required keys, partner ids).
/// Unknown tables and keys are errors, so a typo is never silently ignored. A renamed key still works under its
/// old name, with a warning naming the new one.
/// </remarks>
public static partial class RelayConfigLoader
{
    private static readonly string[] Tables = ["relay", "tls", "limits", "wal", "media", "metrics", "control", "interop", "health", "trace", "evidence"];

    private static readonly Dictionary<string, ContentKind> KindNames = new(StringComparer.Ordinal)
    {
        ["text"] = ContentKind.Text,
        ["image"] = ContentKind.Image,
        ["video"] = ContentKind.Video,
        ["voice"] = ContentKind.Voice,
        ["file"] = ContentKind.File,
        ["sticker"] = ContentKind.Sticker,
        ["status"] = ContentKind.Status,
        ["reaction"] = ContentKind.Reaction,
    };

    // Key path with array indexes removed → setter; the int is the index of the [[partners]] element.
    // Setters throw FormatException (wrong type/shape) or ArgumentOutOfRangeException (RelayLimits range checks).
    private static readonly Dictionary<string, Action<RelayOptions, int, ValueSyntax>> Setters = new(StringComparer.Ordinal)
    {
        ["relay.listen"] = (o, _, v) => o.Listen = Str(v),
        ["relay.relay_id"] = (o, _, v) => o.RelayId = NonEmpty(v),
        ["tls.certificate"] = (o, _, v) => o.Tls.CertificatePath = NonEmpty(v),
        ["tls.key"] = (o, _, v) => o.Tls.KeyPath = NonEmpty(v),
        ["tls.partner_ca"] = (o, _, v) => o.Tls.PartnerCaPath = NonEmpty(v),
        ["tls.crl"] = (o, _, v) => o.Tls.CrlPath = NonEmpty(v),
        ["limits.max_frame_bytes"] = (o, _, v) => o.Limits.MaxFrameBytes = Int(v),
        ["limits.handshake_timeout_ms"] = (o, _, v) => o.Limits.HandshakeTimeout = Ms(v),
        ["limits.idle_timeout_ms"] = (o, _, v) => o.Limits.IdleTimeout = Ms(v),
        ["limits.max_connections_per_partner"] = (o, _, v) => o.Limits.MaxConnectionsPerPartner = Int(v),
        ["limits.shard_count"] = (o, _, v) => o.Limits.ShardCount = Int(v) is 0 ? RelayLimits.DefaultShardCount : Int(v),
        ["limits.max_queued_bytes_per_partner"] = (o, _, v) => o.Limits.MaxQueuedBytesPerPartner = Long(v),
        ["limits.max_queued_envelopes_per_partner"] = (o, _, v) => o.Limits.MaxQueuedEnvelopesPerPartner = Int(v),
        ["limits.delivery_window_envelopes"] = (o, _, v) => o.Limits.DeliveryWindowEnvelopes = Int(v),
        ["limits.delivery_window_bytes"] = (o, _, v) => o.Limits.DeliveryWindowBytes = Int(v),
        ["limits.control_pause_bytes"] = (o, _, v) => o.Limits.ControlPauseBytes = Int(v),
        ["limits.input_buffer_bytes"] = (o, _, v) => o.Limits.InputBufferBytes = Int(v),
        ["limits.dedup_window_seconds"] = (o, _, v) => o.Limits.DedupWindow = Seconds(v),
        ["limits.dedup_capacity_per_partner"] = (o, _, v) => o.Limits.DedupCapacityPerPartner = Int(v),
        ["limits.default_retention_seconds"] = (o, _, v) => o.Limits.DefaultRetention = Seconds(v),
        ["limits.shutdown_timeout_ms"] = (o, _, v) => o.Limits.ShutdownTimeout = Ms(v),
        ["limits.retry_after_ms"] = (o, _, v) => o.Limits.QueueFullRetryAfter = Ms(v),
        ["limits.held_receipts_per_partner"] = (o, _, v) => o.Limits.HeldReceiptsPerPartner = Int(v),
        ["limits.min_frame_data_rate"] = (o, _, v) => o.Limits.MinFrameDataRate = Int(v),
        ["limits.min_frame_data_rate_grace_ms"] = (o, _, v) => o.Limits.MinFrameDataRateGracePeriod = Ms(v),
        ["limits.max_partial_frame_bytes_per_partner"] = (o, _, v) => o.Limits.MaxPartialFrameBytesPerPartner = Long(v) is 0 ? null : Long(v),
        ["limits.write_timeout_ms"] = (o, _, v) => o.Limits.WriteTimeout = Ms(v),
        ["limits.refusal_log_interval_ms"] = (o, _, v) => o.Limits.RefusalLogInterval = Ms(v),
        ["limits.listen_backlog"] = (o, _, v) => o.Limits.ListenBacklog = Int(v),
        ["wal.dir"] = (o, _, v) => o.Storage.Directory = NonEmpty(v),
        ["wal.segment_bytes"] = (o, _, v) => o.Storage.SegmentBytes = Int(v),
        ["wal.reserve_bytes"] = (o, _, v) => o.Storage.ReserveBytes = Long(v),
        ["wal.sync"] = (o, _, v) => o.Storage.Sync = Bool(v),
        ["wal.commit_delay_us"] = (o, _, v) => o.Storage.CommitDelay = Microseconds(v),
        ["wal.retention_interval_ms"] = (o, _, v) => o.Storage.RetentionInterval = Ms(v),
        ["partners[].id"] = (o, i, v) => o.Partners[i].Id = NonEmpty(v),
        ["partners[].max_connections"] = (o, i, v) => o.Partners[i].MaxConnections = Int(v),
        ["partners[].accepted_kinds"] = (o, i, v) => SetKinds(o.Partners[i].AcceptedKinds, v),
        ["partners[].max_media_bytes"] = (o, i, v) => o.Partners[i].MaxMediaBytes = Long(v),
        ["partners[].partner_envelopes_per_second"] = (o, i, v) => o.Partners[i].PartnerEnvelopesPerSecond = Long(v),
        ["partners[].partner_bytes_per_second"] = (o, i, v) => o.Partners[i].PartnerBytesPerSecond = Long(v),
        ["partners[].user_envelopes_per_second"] = (o, i, v) => o.Partners[i].UserEnvelopesPerSecond = Long(v),
        ["partners[].user_envelope_burst"] = (o, i, v) => o.Partners[i].UserEnvelopeBurst = Long(v),
        ["partners[].new_conversations_per_hour"] = (o, i, v) => o.Partners[i].NewConversationsPerHour = Long(v),
        ["partners[].key_bundle_requests_per_minute"] = (o, i, v) => o.Partners[i].KeyBundleRequestsPerMinute = Long(v),
        ["media.spool_dir"] = (o, _, v) => o.Media.SpoolDirectory = NonEmpty(v),
        ["media.max_bytes"] = (o, _, v) => o.Media.MaxBytes = Long(v),
        ["media.spool_quota_bytes_per_partner"] = (o, _, v) => o.Media.SpoolQuotaBytesPerPartner = Long(v),
        ["media.max_concurrent_transfers_per_partner"] = (o, _, v) => o.Media.MaxConcurrentTransfersPerPartner = Int(v),
        ["media.transfer_idle_timeout_ms"] = (o, _, v) => o.Media.TransferIdleTimeout = Ms(v),
        ["media.window_bytes"] = (o, _, v) => o.Media.WindowBytes = Int(v),
        ["metrics.listen"] = (o, _, v) => o.Metrics.Listen = Str(v),
        ["control.socket"] = (o, _, v) => o.Control.SocketPath = NonEmpty(v),
        ["control.group"] = (o, _, v) => o.Control.Group = NonEmpty(v),
        ["interop.require_opt_in"] = (o, _, v) => o.Interop.RequireOptIn = Bool(v),
        ["interop.max_consent_changes"] = (o, _, v) => o.Interop.MaxConsentChanges = Int(v),
        ["interop.kinds"] = (o, _, v) => SetRelayKinds(o.Interop.Kinds, v),
        ["interop.key_bundle_timeout_ms"] = (o, _, v) => o.Interop.KeyBundleTimeout = Ms(v),
        ["interop.key_bundle_max_bytes"] = (o, _, v) => o.Interop.KeyBundleMaxBytes = Int(v),
        ["interop.key_bundle_pending_per_partner"] = (o, _, v) => o.Interop.KeyBundlePendingPerPartner = Int(v),
        ["interop.rate_limits"] = (o, _, v) => o.Interop.RateLimits = Bool(v),
        ["interop.partner_envelopes_per_second"] = (o, _, v) => o.Interop.PartnerEnvelopesPerSecond = Long(v),
        ["interop.partner_bytes_per_second"] = (o, _, v) => o.Interop.PartnerBytesPerSecond = Long(v),
        ["interop.user_envelopes_per_second"] = (o, _, v) => o.Interop.UserEnvelopesPerSecond = Long(v),
        ["interop.user_envelope_burst"] = (o, _, v) => o.Interop.UserEnvelopeBurst = Long(v),
        ["interop.new_conversations_per_hour"] = (o, _, v) => o.Interop.NewConversationsPerHour = Long(v),
        ["interop.key_bundle_requests_per_minute"] = (o, _, v) => o.Interop.KeyBundleRequestsPerMinute = Long(v),
        ["interop.rate_limit_tracked_users"] = (o, _, v) => o.Interop.RateLimitTrackedUsers = Int(v),
        ["interop.seen_pairs_per_hour"] = (o, _, v) => o.Interop.SeenPairsPerHour = Int(v),
        ["interop.tighten_reported_senders"] = (o, _, v) => o.Interop.TightenReportedSenders = Bool(v),
        ["interop.tightened_user_envelopes_per_second"] = (o, _, v) => o.Interop.TightenedUserEnvelopesPerSecond = Long(v),
        ["interop.tighten_seconds"] = (o, _, v) => o.Interop.TightenDuration = Seconds(v),
        ["interop.tighten_after_reports"] = (o, _, v) => o.Interop.TightenAfterReports = Int(v),
        ["health.enabled"] = (o, _, v) => o.Health.Enabled = Bool(v),
        ["trace.enabled"] = (o, _, v) => o.Trace.Enabled = Bool(v),
        ["trace.retention_seconds"] = (o, _, v) => o.Trace.Retention = Seconds(v),
        ["trace.max_bytes"] = (o, _, v) => o.Trace.MaxBytes = Long(v),
        ["trace.segment_bytes"] = (o, _, v) => o.Trace.SegmentBytes = Int(v),
        ["evidence.enabled"] = (o, _, v) => o.Evidence.Enabled = Bool(v),
        ["evidence.key"] = (o, _, v) => o.Evidence.KeyPath = NonEmpty(v),
        ["evidence.dir"] = (o, _, v) => o.Evidence.Directory = NonEmpty(v),
        ["evidence.sign_interval_ms"] = (o, _, v) => o.Evidence.SignInterval = Ms(v),
        ["evidence.sign_every"] = (o, _, v) => o.Evidence.SignEvery = Int(v),
        ["evidence.max_tree_leaves"] = (o, _, v) => o.Evidence.MaxTreeLeaves = Int(v),
        ["evidence.max_tree_age_seconds"] = (o, _, v) => o.Evidence.MaxTreeAge = Seconds(v),
        ["evidence.retention_seconds"] = (o, _, v) => o.Evidence.Retention = Seconds(v),
        ["evidence.max_bytes"] = (o, _, v) => o.Evidence.MaxBytes = Long(v),
        ["evidence.queue_capacity"] = (o, _, v) => o.Evidence.QueueCapacity = Int(v),
        ["evidence.index_capacity"] = (o, _, v) => o.Evidence.IndexCapacity = Int(v),
    };

    // Old key → its new name. The old one keeps working, with a warning; setting both is an error.
    private static readonly Dictionary<string, string> RenamedKeys = new(StringComparer.Ordinal)
    {
        // It never set QUEUE_FULL's retry-after only: it is that of every refusal worth retrying.
        ["limits.queue_full_retry_after_ms"] = "limits.retry_after_ms",
    };

    /// <summary>Every key the loader reads (<c>table.key</c>; <c>partners[].key</c> for a partner's), renamed ones not included.</summary>
    internal static IEnumerable<string> Keys => Setters.Keys;

    /// <summary>Reads and validates the configuration file at <paramref name="path"/>.</summary>
    /// <exception cref="ConfigException">The file cannot be read or is invalid.</exception>
    public static RelayOptions Load(string path) => Load(path, out _);

    /// <summary>Reads and validates the configuration file at <paramref name="path"/>; <paramref name="warnings"/> gets what should change but works.</summary>
    /// <exception cref="ConfigException">The file cannot be read or is invalid.</exception>
    public static RelayOptions Load(string path, out IReadOnlyList<ConfigError> warnings)
    {
        Result result = ReadAndParse(path);
        warnings = [.. result.Problems.Where(p => p.IsWarning)];
        return OptionsOrThrow(result);
    }

    /// <summary>
    /// Parses and validates configuration text. Relative paths in it are resolved against the directory of
    /// <paramref name="sourceName"/> when it has one; <paramref name="sourceName"/> also names the source in errors.
    /// </summary>
    /// <exception cref="ConfigException">The text is invalid.</exception>
    public static RelayOptions Parse(string tomlText, string sourceName) => OptionsOrThrow(ParseCore(tomlText, sourceName));

    /// <summary>
    /// Every problem in the configuration file at <paramref name="path"/>, errors and warnings in file order (no
    /// errors = valid). With <paramref name="checkFiles"/>, also loads and cross-checks the files named under [tls]
    /// as <c>relayd run</c> does (certificate, matching key, partner CA bundle, CRL); without it, syntax, keys,
    /// values and ranges only, for checking a config away from the machine it is for.
    /// </summary>
    public static IReadOnlyList<ConfigError> Check(string path, bool checkFiles = true) => Read(path, checkFiles).Problems;

    /// <summary>
    /// Reads the file as <see cref="Check"/> does and keeps what a reload needs besides the problems: the options
    /// (valid when <see cref="LoadedConfig.IsValid"/>) and every key's value in one canonical spelling, so that two
    /// reads can be compared key by key whatever the comments and formatting.
    /// </summary>
    internal static LoadedConfig Read(string path, bool checkFiles = true)
    {
        Result result = ReadAndParse(path);
        // After a syntax error, or with a [tls] key already in error (missing, wrong type), the file checks would
        // only repeat it.
        if (checkFiles && !result.Problems.Any(p => !p.IsWarning && (p.Key.Length == 0 || p.Key == "tls" || p.Key.StartsWith("tls.", StringComparison.Ordinal))))
        {
            foreach (Security.TlsProblem problem in Security.TlsMaterial.Check(result.Options.Tls))
            {
                result.Problems.Add(new ConfigError(path, result.Lines.GetValueOrDefault(problem.Key), problem.Key, $"{problem.Path}: {problem.Reason}"));
            }

            // The evidence key as the relay will load it (mode 0600, Ed25519 PKCS#8 PEM).
            if (result.Options.Evidence is { IsOn: true, KeyPath: { } evidenceKey } && !result.Problems.Any(p => p.Key.StartsWith("evidence.", StringComparison.Ordinal))
                && Support.Evidence.EvidenceKey.TryLoad(evidenceKey, out string? keyProblem) is null)
            {
                result.Problems.Add(new ConfigError(path, result.Lines.GetValueOrDefault("evidence.key"), "evidence.key", $"{evidenceKey}: {keyProblem}"));
            }
        }

        return new LoadedConfig(result.Options, [.. result.Problems.OrderBy(p => p.Line)], result.Values, result.Lines);
    }

    /// <summary>Parses a listen address: "host:port" with an IPv4 host, "[v6]:port", or "localhost:port" (IPv4 loopback).</summary>
    /// <exception cref="FormatException"><paramref name="value"/> is not such an address.</exception>
    public static IPEndPoint ParseListen(string value) => ListenAddress.Parse(value);

    private static RelayOptions OptionsOrThrow(Result result)
    {
        List<ConfigError> errors = [.. result.Problems.Where(p => !p.IsWarning)];
        return errors.Count == 0 ? result.Options : throw new ConfigException(errors);
    }

    private static Result ReadAndParse(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return new Result(new RelayOptions(), [new ConfigError(path, 0, "", $"cannot read the file: {ex.Message}")], [], []);
        }

        return ParseCore(text, path);
    }

    private static Result ParseCore(string text, string source)
    {
        ArgumentNullException.ThrowIfNull(text);
        var options = new RelayOptions();
        var errors = new List<ConfigError>();
        DocumentSyntax document;
        try
        {
            document = SyntaxParser.Parse(text, source, validate: true);
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or FormatException or IndexOutOfRangeException)
        {
            // Tomlyn throws instead of reporting a few malformed inputs (e.g. a file ending in "\u": found by fuzzing).
            return new Result(options, [new ConfigError(source, 0, "", $"not valid TOML ({ex.GetType().Name} in the TOML parser: {ex.Message})")], [], []);
        }

        if (document.HasErrors)
        {
            // A broken tree would only produce follow-on noise: report the TOML errors alone.
            foreach (DiagnosticMessage diagnostic in document.Diagnostics)
            {
                if (diagnostic.Kind == DiagnosticMessageKind.Error)
                {
                    errors.Add(new ConfigError(source, diagnostic.Span.Start.Line + 1, "", diagnostic.Message));
                }
            }

            return new Result(options, errors, [], []);
        }

        var collector = new Collector(source, errors);
        collector.AddItems("", "", 0, KeyValues(document.KeyValues));
        foreach (TableSyntaxBase table in document.Tables)
        {
            collector.AddTable(table);
        }

        for (int i = 0; i < collector.PartnerCount; i++)
        {
            options.Partners.Add(new PartnerOptions());
        }

        Dictionary<string, int> lines = collector.Lines;
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (Entry entry in collector.Entries)
        {
            Entry current = entry;
            if (RenamedKeys.TryGetValue(entry.Pattern, out string? newKey))
            {
                if (lines.TryGetValue(newKey, out int newLine))
                {
                    errors.Add(new ConfigError(source, entry.Line, entry.Key, $"the old name of {newKey}, which is set too (line {newLine}): remove this one"));
                    continue;
                }

                errors.Add(new ConfigError(source, entry.Line, entry.Key, $"renamed to {newKey}; the old name still works but will be removed") { IsWarning = true });
                current = entry with { Pattern = newKey };
            }

            values[current.Pattern == entry.Pattern ? entry.Key : current.Pattern] = Canonical(entry.Value);
            if (Apply(options, current) is { } problem)
            {
                errors.Add(new ConfigError(source, entry.Line, entry.Key, problem));
            }
        }

        // The tree's own checks (listen address, required keys, partner ids), as dev, demo and tests get them. A key
        // whose value was refused above kept its default, about which they would only repeat the refusal.
        HashSet<string> refused = [.. errors.Where(e => !e.IsWarning).Select(e => e.Key)];
        foreach (OptionsProblem problem in options.Check(key => lines[key]))
        {
            if (!refused.Contains(problem.Key))
            {
                errors.Add(new ConfigError(source, LineOfKey(lines, problem.Key), problem.Key, problem.Message));
            }
        }

        if (!refused.Contains("metrics.listen") && options.Metrics.ExposureWarning() is { } exposed)
        {
            errors.Add(new ConfigError(source, LineOfKey(lines, "metrics.listen"), "metrics.listen", exposed) { IsWarning = true });
        }

        ResolvePaths(options, Path.GetDirectoryName(source));
        return new Result(options, [.. errors.OrderBy(e => e.Line)], lines, values); // file order (OrderBy is stable)
    }

    private static string? Apply(RelayOptions options, Entry entry)
    {
        if (!Setters.TryGetValue(entry.Pattern, out Action<RelayOptions, int, ValueSyntax>? set))
        {
            return Tables.Contains(entry.Pattern) ? "expected a table" : "unknown key";
        }

        try
        {
            set(options, entry.Index, entry.Value);
            return null;
        }
        catch (FormatException ex)
        {
            return ex.Message;
        }
        catch (ArgumentOutOfRangeException ex)
        {
            // Keep only the setter's own text: drop " (Parameter 'X')" and the "Actual value was …" line.
            string message = ex.Message.Split('\n')[0].Trim().TrimEnd('.');
            int parameter = message.IndexOf(" (Parameter '", StringComparison.Ordinal);
            return $"{(parameter >= 0 ? message[..parameter] : message)} (got {entry.Value.ToString()?.Trim()})";
        }
        catch (ArgumentException ex)
        {
            // Any other check an options setter makes (fuzzing found `spool_dir = " "` escaping as a stack trace).
            int parameter = ex.Message.IndexOf(" (Parameter '", StringComparison.Ordinal);
            return parameter >= 0 ? ex.Message[..parameter] : ex.Message;
        }
    }

    /// <summary>The line of <paramref name="key"/>, else of the nearest table around it (<c>partners[2]</c> for <c>partners[2].id</c>); 0 if none.</summary>
    private static int LineOfKey(Dictionary<string, int> lines, string key)
    {
        for (string k = key; ; k = k[..k.LastIndexOf('.')])
        {
            if (lines.TryGetValue(k, out int line))
            {
                return line;
            }

            if (!k.Contains('.', StringComparison.Ordinal))
            {
                return 0;
            }
        }
    }

    private static void ResolvePaths(RelayOptions options, string? directory)
    {
        TlsOptions tls = options.Tls;
        if (string.IsNullOrEmpty(directory))
        {
            return;
        }

        string Resolve(string path) => path.Length == 0 || Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(directory, path));
        tls.CertificatePath = Resolve(tls.CertificatePath);
        tls.KeyPath = Resolve(tls.KeyPath);
        tls.PartnerCaPath = Resolve(tls.PartnerCaPath);
        tls.CrlPath = tls.CrlPath is null ? null : Resolve(tls.CrlPath);
        options.Storage.Directory = Resolve(options.Storage.Directory);
        options.Media.SpoolDirectory = Resolve(options.Media.SpoolDirectory);
        options.Control.SocketPath = Resolve(options.Control.SocketPath);
        options.Evidence.KeyPath = options.Evidence.KeyPath is null ? null : Resolve(options.Evidence.KeyPath);
        options.Evidence.Directory = Resolve(options.Evidence.Directory);
    }

    private static string Str(ValueSyntax v) => v is StringValueSyntax { Value: { } s } ? s : throw Mismatch("a string", v);

    private static string NonEmpty(ValueSyntax v) => Str(v) is { } s && !string.IsNullOrWhiteSpace(s) ? s : throw new FormatException("must not be empty or blank");

    private static bool Bool(ValueSyntax v) => v is BooleanValueSyntax b ? b.Value : throw Mismatch("true or false", v);

    private static long Long(ValueSyntax v) => v is IntegerValueSyntax i ? i.Value : throw Mismatch("an integer", v);

    private static int Int(ValueSyntax v)
    {
        long n = Long(v);
        return n is >= int.MinValue and <= int.MaxValue ? (int)n : throw new FormatException($"{n} is too large");
    }

    private static TimeSpan Ms(ValueSyntax v) => Duration(Long(v), TimeSpan.TicksPerMillisecond);

    private static TimeSpan Seconds(ValueSyntax v) => Duration(Long(v), TimeSpan.TicksPerSecond);

    private static TimeSpan Microseconds(ValueSyntax v) => Duration(Long(v), TimeSpan.TicksPerMicrosecond);

    // Saturates beyond TimeSpan's range (about 29,000 years), so the setter's own range message is what gets reported.
    private static TimeSpan Duration(long count, long ticksPerUnit) =>
        count > TimeSpan.MaxValue.Ticks / ticksPerUnit ? TimeSpan.MaxValue
        : count < TimeSpan.MinValue.Ticks / ticksPerUnit ? TimeSpan.MinValue
        : TimeSpan.FromTicks(count * ticksPerUnit);

    private static void SetKinds(IList<ContentKind> kinds, ValueSyntax v)
    {
        if (v is not ArraySyntax array)
        {
            throw Mismatch("an array of strings", v);
        }

        foreach (ArrayItemSyntax item in array.Items)
        {
            string name = item.Value is { } value ? Str(value) : "";
            ContentKind kind = KindNames.TryGetValue(name, out ContentKind k) ? k
                : throw new FormatException($"unknown content kind '{name}' (expected {string.Join(", ", KindNames.Keys)})");
            if (!kinds.Contains(kind))
            {
                kinds.Add(kind);
            }
        }
    }

    // The relay's policy replaces the launch profile; an empty list would refuse every message, which is no policy.
    private static void SetRelayKinds(IList<ContentKind> kinds, ValueSyntax v)
    {
        var named = new List<ContentKind>();
        SetKinds(named, v);
        if (named.Count == 0)
        {
            throw new FormatException($"must name at least one content kind ({string.Join(", ", KindNames.Keys)})");
        }

        kinds.Clear();
        foreach (ContentKind kind in named)
        {
            kinds.Add(kind);
        }
    }

    private static FormatException Mismatch(string expected, ValueSyntax v)
    {
        string found = v switch
        {
            StringValueSyntax => "a string",
            IntegerValueSyntax => "an integer",
            FloatValueSyntax => "a float",
            BooleanValueSyntax => "a boolean",
            DateTimeValueSyntax => "a date-time",
            ArraySyntax => "an array",
            InlineTableSyntax => "a table",
            _ => v.GetType().Name,
        };
        return new FormatException($"expected {expected}, found {found} {v.ToString()?.Trim()}");
    }

    private static int LineOf(SyntaxNode node) => node.Span.Start.Line + 1;

    /// <summary>"a.b" from a possibly dotted, possibly quoted key.</summary>
    private static string NameOf(KeySyntax? key)
    {
        static string Part(BareKeyOrStringValueSyntax? part) => part switch
        {
            BareKeySyntax bare => bare.Key?.Text ?? "",
            StringValueSyntax quoted => quoted.Value ?? "",
            _ => "",
        };

        if (key is null)
        {
            return "";
        }

        string name = Part(key.Key);
        foreach (DottedKeyItemSyntax dotted in key.DotKeys)
        {
            name += "." + Part(dotted.Key);
        }

        return name;
    }

    // SyntaxList<T> is enumerable with foreach only (it does not implement IEnumerable<T>).
    private static IEnumerable<KeyValueSyntax> KeyValues(SyntaxList<KeyValueSyntax> list)
    {
        foreach (KeyValueSyntax item in list)
        {
            yield return item;
        }
    }

    private static IEnumerable<KeyValueSyntax> KeyValues(InlineTableSyntax table)
    {
        foreach (InlineTableItemSyntax item in table.Items)
        {
            if (item.KeyValue is { } keyValue)
            {
                yield return keyValue;
            }
        }
    }

    private static string Join(string prefix, string name) => prefix.Length == 0 ? name : prefix + "." + name;

    /// <summary>One key = value, flattened: <c>partners[2].id</c> with pattern <c>partners[].id</c> and index 2.</summary>
    private sealed record Entry(string Key, string Pattern, int Index, ValueSyntax Value, int Line);

    /// <summary>The options read, every error and warning, and the line of every key and table.</summary>
    private sealed record Result(RelayOptions Options, List<ConfigError> Problems, Dictionary<string, int> Lines, Dictionary<string, string> Values);

    /// <summary>A value without its comments and formatting: <c>"a"</c>, <c>42</c>, <c>true</c>, <c>["text", "image"]</c>.</summary>
    private static string Canonical(ValueSyntax value) => value switch
    {
        StringValueSyntax s => "\"" + s.Value + "\"",
        IntegerValueSyntax i => i.Value.ToString(System.Globalization.CultureInfo.InvariantCulture),
        BooleanValueSyntax b => b.Value ? "true" : "false",
        FloatValueSyntax f => f.Value.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        ArraySyntax a => "[" + string.Join(", ", a.Items.Select(item => item.Value is null ? "" : Canonical(item.Value))) + "]",
        _ => value.ToString()?.Trim() ?? "",
    };

    /// <summary>Flattens the syntax tree into <see cref="Entry"/>s, remembering the line of every key and table.</summary>
    private sealed class Collector(string source, List<ConfigError> errors)
    {
        public List<Entry> Entries { get; } = [];

        /// <summary>Key path or table ("tls", "partners[0]") → 1-based line.</summary>
        public Dictionary<string, int> Lines { get; } = new(StringComparer.Ordinal);

        public int PartnerCount { get; private set; }

        public void AddTable(TableSyntaxBase table)
        {
            string name = NameOf(table.Name);
            int line = LineOf(table);
            if (table is TableArraySyntax && name == "partners")
            {
                AddPartner(line, KeyValues(table.Items));
            }
            else if (table is TableSyntax && Tables.Contains(name))
            {
                Lines[name] = line;
                AddItems(name, name, 0, KeyValues(table.Items));
            }
            else
            {
                errors.Add(new ConfigError(source, line, name, $"unknown table (expected {string.Join(", ", Tables.Select(t => $"[{t}]"))} or [[partners]])"));
            }
        }

        public void AddItems(string prefix, string pattern, int index, IEnumerable<KeyValueSyntax> items)
        {
            foreach (KeyValueSyntax item in items)
            {
                Add(prefix, pattern, index, item);
            }
        }

        private void Add(string prefix, string pattern, int index, KeyValueSyntax item)
        {
            string key = Join(prefix, NameOf(item.Key));
            string keyPattern = Join(pattern, NameOf(item.Key));
            int line = LineOf(item.Key ?? (SyntaxNode)item);
            Lines.TryAdd(key, line);
            switch (item.Value)
            {
                case null:
                    break;
                case InlineTableSyntax inline:
                    AddItems(key, keyPattern, index, KeyValues(inline));
                    break;
                case ArraySyntax array when keyPattern == "partners":
                    // partners = [{ id = "a" }, …] is the inline spelling of [[partners]].
                    Lines[key] = line;
                    foreach (ArrayItemSyntax element in array.Items)
                    {
                        if (element.Value is InlineTableSyntax partner)
                        {
                            AddPartner(LineOf(partner), KeyValues(partner));
                        }
                        else
                        {
                            errors.Add(new ConfigError(source, line, key, "expected [[partners]] tables"));
                        }
                    }

                    break;
                default:
                    Entries.Add(new Entry(key, keyPattern, index, item.Value, line));
                    break;
            }
        }

        private void AddPartner(int line, IEnumerable<KeyValueSyntax> items)
        {
            string key = $"partners[{PartnerCount}]";
            Lines[key] = line;
            Lines.TryAdd("partners", line);
            AddItems(key, "partners[]", PartnerCount++, items);
        }
    }
}

/// <summary>What <see cref="RelayConfigLoader.Read"/> found in a configuration file.</summary>
/// <param name="Options">The options read; meaningful only when <see cref="IsValid"/>.</param>
/// <param name="Problems">Every error and warning, in file order.</param>
/// <param name="Values">Every key set in the file (<c>limits.max_frame_bytes</c>, <c>partners[0].id</c>) and its value, canonically spelled.</param>
/// <param name="Lines">The 1-based line of every key and table.</param>
internal sealed record LoadedConfig(RelayOptions Options, IReadOnlyList<ConfigError> Problems, IReadOnlyDictionary<string, string> Values, IReadOnlyDictionary<string, int> Lines)
{
    public bool IsValid => !Problems.Any(p => !p.IsWarning);
}
