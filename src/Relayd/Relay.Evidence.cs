using Relayd.Support.Evidence;

namespace Relayd;

/// <summary>Signed delivery evidence's part of the composition (docs/evidence.md): the key, the store, its counters.</summary>
internal sealed partial class Relay
{
    /// <summary>Signed delivery evidence (EvidenceRequest, Welcome.evidence_public_key); null when [evidence] is off or before <see cref="Open"/>.</summary>
    internal EvidenceStore? Evidence { get; private set; }

    /// <summary>The [evidence] key, checked like the TLS key (mode 0600, an Ed25519 PKCS#8 PEM); null when evidence is off.</summary>
    /// <exception cref="EvidenceKeyException">The key cannot be used: the relay refuses to start.</exception>
    private EvidenceKey? LoadEvidenceKey()
    {
        if (!_options.Evidence.IsOn)
        {
            return null;
        }

        string path = _options.Evidence.KeyPath!;
        return EvidenceKey.TryLoad(path, out string? problem) ?? throw new EvidenceKeyException(path, problem ?? "cannot be loaded");
    }

    /// <summary>Opens the evidence files (after the log's recovery) and adds the recorder to the support consumers.</summary>
    private void AddEvidence(List<Routing.ISupportEvents> consumers, EvidenceKey? key)
    {
        if (key is null)
        {
            return;
        }

        string directory = _options.Evidence.Directory.Length > 0 ? _options.Evidence.Directory : Path.Combine(_options.Storage.Directory, "evidence");
        EvidenceStore store = EvidenceStore.Open(_options.Evidence, directory, _options.RelayId, key, _clock, _logger);
        Evidence = store;
        store.Start();
        consumers.Add(store.Recorder);
        Metrics.Meter.CreateObservableCounter("relayd.evidence.dropped", () => store.Recorder.Dropped, "{statement}", "Evidence statements dropped because the evidence writer's queue was full (the data path never waits for it)");
        Metrics.Meter.CreateObservableCounter("relayd.evidence.trees_deleted", () => store.TreesDeleted, "{tree}", "Closed evidence trees deleted by [evidence] retention_seconds or max_bytes; their proofs are no longer served");
    }

    private async ValueTask CloseEvidenceAsync()
    {
        if (Evidence is { } evidence)
        {
            Evidence = null;
            await evidence.DisposeAsync();
        }
    }
}
