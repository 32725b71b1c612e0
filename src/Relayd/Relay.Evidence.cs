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

    /// <summary>
    /// Opens the evidence files before the log's recovery, which re-derives from the replayed envelopes the accepted
    /// statements a kill lost (<see cref="EvidenceStore.Recovered"/>); null when evidence is off.
    /// </summary>
    private EvidenceStore? OpenEvidence(EvidenceKey? key)
    {
        if (key is null)
        {
            return null;
        }

        string directory = _options.Evidence.Directory.Length > 0 ? _options.Evidence.Directory : Path.Combine(_options.Storage.Directory, "evidence");
        Evidence = EvidenceStore.Open(_options.Evidence, directory, _options.RelayId, key, _clock, _logger);
        return Evidence;
    }

    /// <summary>Starts the evidence writer (after the recovery) and adds its recorder to the support consumers.</summary>
    private void AddEvidence(List<Routing.ISupportEvents> consumers, EvidenceKey? key)
    {
        if (key is null || Evidence is not { } store)
        {
            return;
        }

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
