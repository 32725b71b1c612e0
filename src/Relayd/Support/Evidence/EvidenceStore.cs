using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;
using Relayd.Protocol.V1;

namespace Relayd.Support.Evidence;

/// <summary>
/// The evidence writer and its files (docs/evidence.md): drains what <see cref="EvidenceRecorder"/> queued, turns
/// each step into a statement, appends it to the current tree's file and Merkle tree, signs a tree head every
/// <see cref="EvidenceOptions.SignInterval"/> or <see cref="EvidenceOptions.SignEvery"/> statements, closes the tree
/// after <see cref="EvidenceOptions.MaxTreeLeaves"/> statements or <see cref="EvidenceOptions.MaxTreeAge"/>, and
/// answers proofs by (sender partner, message id) for that message's sender or recipient partner only.
/// </summary>
/// <remarks>
/// One lock guards the current tree, the index and the cache of one closed tree; file scans and closed-tree rebuilds
/// run outside it. At start every tree file is read back; a tree whose last head does not cover all its statements
/// (the relay was killed) gets a head signed over all of them, and a new tree begins, so whatever reached the disk is
/// served after a restart.
/// </remarks>
internal sealed class EvidenceStore : IAsyncDisposable, Routing.IRecoveredEnvelopes
{
    // About what a statement record takes on disk, to pick which trees to index at start from their file sizes.
    private const int TypicalRecordBytes = 200;
    private const int BatchItems = 4096;

    // A statement's ids are partner ids (at most 63 bytes, PartnerOptions.IdPattern) and the relay id (the host name
    // by default): a stack buffer this large holds them unless relay_id is unusually long.
    private const int StatementBuffer = 1 + 3 * (2 + 255) + 32 + 32 + 16 + 32 + 8;

    private readonly EvidenceOptions _options;
    private readonly EvidenceKey _key;
    private readonly string _relayId;
    private readonly TimeProvider _clock;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly Channel<EvidenceItem> _queue;
    private readonly CancellationTokenSource _stopping = new();
    private readonly SortedDictionary<ulong, string> _closed = []; // tree id -> file, oldest first
    private readonly StatementIndex _index;
    private ClosedTree? _closedCache;
    private OpenTree _current = null!;
    private Task _drain = Task.CompletedTask;
    private Task _signer = Task.CompletedTask;
    private bool _failed;
    private long _treesDeleted;
    private long _droppedLogged;

    private EvidenceStore(EvidenceOptions options, string directory, string relayId, EvidenceKey key, TimeProvider clock, ILogger logger)
    {
        _options = options;
        Directory = directory;
        _relayId = relayId;
        _key = key;
        _clock = clock;
        _logger = logger;
        _index = new StatementIndex(2 * options.IndexCapacity); // two statements a message
        _queue = Channel.CreateBounded<EvidenceItem>(new BoundedChannelOptions(options.QueueCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        Recorder = new EvidenceRecorder(_queue.Writer);
    }

    /// <summary>The data path's side: hashes and queues.</summary>
    public EvidenceRecorder Recorder { get; }

    public string Directory { get; }

    /// <summary>The raw 32-byte public key (Welcome.evidence_public_key).</summary>
    public byte[] PublicKey => _key.PublicKey;

    /// <summary>Closed trees deleted by retention or the size cap (relayd.evidence.trees_deleted).</summary>
    public long TreesDeleted => Interlocked.Read(ref _treesDeleted);

    /// <summary>The id of the tree statements are appended to now.</summary>
    public ulong CurrentTreeId
    {
        get
        {
            lock (_gate)
            {
                return _current.Id;
            }
        }
    }

    /// <summary>Opens (and recovers) the evidence directory; call <see cref="Start"/> to run the writer.</summary>
    /// <exception cref="IOException">The directory or a tree file cannot be read or written.</exception>
    public static EvidenceStore Open(EvidenceOptions options, string directory, string relayId, EvidenceKey key, TimeProvider clock, ILogger logger)
    {
        // The relay's user and group only, as the trace: statements name partners and message ids and carry user hashes.
        if (OperatingSystem.IsWindows())
        {
            System.IO.Directory.CreateDirectory(directory);
        }
        else
        {
            System.IO.Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
        }

        var store = new EvidenceStore(options, directory, relayId, key, clock, logger);
        int indexed = store.Recover();
        EvidenceLog.EvidenceOpened(logger, store._closed.Count, directory, indexed, store._current.Id, Convert.ToHexStringLower(key.PublicKey));
        return store;
    }

    /// <summary>Starts the writer (drains the queue) and the signer (signs every sign_interval, closes old trees).</summary>
    public void Start()
    {
        _drain = Task.Run(DrainAsync);
        _signer = Task.Run(SignLoopAsync);
    }

    private long NowMs => _clock.GetUtcNow().ToUnixTimeMilliseconds();

    // ---- start ------------------------------------------------------------------------------------------------

    private int Recover()
    {
        List<(ulong Id, string Path)> files = [.. System.IO.Directory.EnumerateFiles(Directory, "tree-*.evl")
            .Select(p => (Id: EvidenceTreeFile.IdOf(Path.GetFileName(p)), Path: p))
            .Where(f => f.Id is not null)
            .Select(f => (f.Id!.Value, f.Path))
            .OrderBy(f => f.Value)];

        // Index the newest trees, as many as the index holds; older ones are found by scanning their files.
        var toIndex = new HashSet<ulong>();
        long budget = _options.IndexCapacity;
        for (int i = files.Count - 1; i >= 0 && budget > 0; i--)
        {
            toIndex.Add(files[i].Id);
            budget -= new FileInfo(files[i].Path).Length / TypicalRecordBytes + 1;
        }

        ulong lastId = 0;
        foreach ((ulong id, string path) in files)
        {
            lastId = id;
            bool isLast = id == files[^1].Id;
            if (!isLast && !toIndex.Contains(id))
            {
                _closed[id] = path; // closed when it was rotated; read when asked for
                continue;
            }

            EvidenceTreeFile.Contents? contents = EvidenceTreeFile.Read(path);
            if (contents is null || contents.Leaves.Count == 0)
            {
                File.Delete(path); // created and killed before its first statement: nothing to serve
                continue;
            }

            var tree = new MerkleTree();
            foreach (LeafRecord leaf in contents.Leaves)
            {
                tree.AppendLeafHash(leaf.LeafHash);
            }

            SignedHead last;
            if (contents.Heads.Count == 0 || contents.Heads[^1].Size < contents.Leaves.Count || contents.WholeBytes < contents.Bytes.Length)
            {
                // Killed before the tree was closed: drop a torn tail, then sign over every whole statement.
                last = SignOver(id, tree, tree.Size);
                using var file = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.Read);
                file.SetLength(contents.WholeBytes);
                file.Seek(0, SeekOrigin.End);
                EvidenceTreeFile.WriteHead(file, last);
                file.Flush(flushToDisk: true);
            }
            else
            {
                last = contents.Heads[^1];
            }

            _closed[id] = path;
            _closedCache = new ClosedTree(id, path, tree, last);
            if (toIndex.Contains(id))
            {
                IndexContents(id, contents);
            }
        }

        _current = OpenTree.Create(Directory, lastId + 1, NowMs);
        ApplyRetention();
        return _index.Count;
    }

    private void IndexContents(ulong treeId, EvidenceTreeFile.Contents contents)
    {
        for (int i = 0; i < contents.Leaves.Count; i++)
        {
            LeafRecord leaf = contents.Leaves[i];
            if (EvidenceLayouts.ParseStatement(contents.Bytes.AsSpan((int)leaf.Offset, leaf.Length), out _) is { } statement)
            {
                _index.Add(statement.SenderPartner, statement.MessageId, statement.Kind, statement.RecipientPartner, new StatementLocation(treeId, i, leaf.Offset, leaf.Length));
            }
        }
    }

    // ---- writing ----------------------------------------------------------------------------------------------

    private async Task DrainAsync()
    {
        ChannelReader<EvidenceItem> reader = _queue.Reader;
        while (await reader.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
        {
            DrainBatch(reader);
        }
    }

    /// <summary>Benchmarks, with <see cref="Start"/> not called: the writer's work on what is queued, on the caller's thread.</summary>
    internal void DrainNow()
    {
        while (_queue.Reader.Count > 0)
        {
            DrainBatch(_queue.Reader);
        }
    }

    private void DrainBatch(ChannelReader<EvidenceItem> reader)
    {
        lock (_gate)
        {
            try
            {
                for (int n = 0; n < BatchItems && reader.TryRead(out EvidenceItem item); n++)
                {
                    if (!_failed)
                    {
                        Process(item);
                    }
                }

                if (!_failed)
                {
                    _current.File.Flush(); // to the OS: what a lookup reads back by offset
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                _failed = true;
                EvidenceLog.EvidenceWriteFailed(_logger, _current.Path, ex.Message);
            }
        }
    }

    private async Task SignLoopAsync()
    {
        using var timer = new PeriodicTimer(_options.SignInterval, _clock);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
            {
                lock (_gate)
                {
                    try
                    {
                        if (_failed)
                        {
                            continue;
                        }

                        SignHead();
                        if (_current.Tree.Size > 0 && NowMs - _current.CreatedMs >= (long)_options.MaxTreeAge.TotalMilliseconds)
                        {
                            Rotate();
                        }
                    }
                    catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                    {
                        _failed = true;
                        EvidenceLog.EvidenceWriteFailed(_logger, _current.Path, ex.Message);
                    }
                }

                long dropped = Recorder.Dropped;
                if (dropped > _droppedLogged)
                {
                    _droppedLogged = dropped;
                    EvidenceLog.EvidenceStatementsDropped(_logger, dropped, _options.QueueCapacity);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private void Process(in EvidenceItem item)
    {
        switch (item.Kind)
        {
            case EvidenceItemKind.Accepted:
            {
                int bytes = EvidenceLayouts.AcceptedBytes(_relayId, item.Sender.Id, item.Recipient.Id);
                Span<byte> statement = (bytes <= StatementBuffer ? stackalloc byte[StatementBuffer] : new byte[bytes])[..bytes];
                EvidenceLayouts.WriteAccepted(statement, _relayId, item.Sender.Id, item.SenderUserHash, item.Recipient.Id, item.RecipientUserHash, item.MessageId, item.CiphertextSha256, item.AtMs);
                _index.Add(item.Sender.Id, item.MessageId, StatementKind.Accepted, item.Recipient.Id, Append(statement));
                break;
            }

            case EvidenceItemKind.Acknowledged or EvidenceItemKind.Expired or EvidenceItemKind.Refused:
            {
                // One outcome per message: the queue settles an envelope once (acknowledged, expired or refused). Only
                // a relay killed after the outcome's statement and before the log's settlement delivers it again, and
                // then a second delivery statement is written; a lookup serves the newest.
                bool acked = item.Kind == EvidenceItemKind.Acknowledged;
                int bytes = EvidenceLayouts.DeliveryBytes(_relayId, item.Sender.Id, item.Recipient.Id);
                Span<byte> statement = (bytes <= StatementBuffer ? stackalloc byte[StatementBuffer] : new byte[bytes])[..bytes];
                EvidenceLayouts.WriteDelivery(statement, _relayId, item.Sender.Id, item.Recipient.Id, item.MessageId,
                    item.Kind switch { EvidenceItemKind.Acknowledged => DeliveryStatus.Acknowledged, EvidenceItemKind.Expired => DeliveryStatus.Expired, _ => DeliveryStatus.Refused },
                    acked && item.DeliveredAtMs != 0 ? item.DeliveredAtMs : item.AtMs, acked ? item.AtMs : 0);
                _index.Add(item.Sender.Id, item.MessageId, StatementKind.Delivery, item.Recipient.Id, Append(statement));
                break;
            }
        }
    }

    private StatementLocation Append(ReadOnlySpan<byte> statement)
    {
        Span<byte> leafHash = stackalloc byte[MerkleTree.HashBytes];
        MerkleTree.LeafHash(statement, leafHash);
        long offset = EvidenceTreeFile.WriteStatement(_current.File, statement, leafHash);
        long index = _current.Tree.AppendLeafHash(leafHash);
        var location = new StatementLocation(_current.Id, index, offset, statement.Length);
        if (_current.Tree.Size - (_current.LastHead?.Size ?? 0) >= _options.SignEvery)
        {
            SignHead();
        }

        if (_current.Tree.Size >= _options.MaxTreeLeaves)
        {
            Rotate();
        }

        return location;
    }

    /// <summary>Signs a head over the current tree if statements were added since the last one.</summary>
    private void SignHead()
    {
        long size = _current.Tree.Size;
        if (size == 0 || size == (_current.LastHead?.Size ?? 0))
        {
            return;
        }

        _current.File.Flush();
        SignedHead head = SignOver(_current.Id, _current.Tree, size);
        EvidenceTreeFile.WriteHead(_current.File, head);
        _current.File.Flush(flushToDisk: true);
        _current.Heads.Add(head);
    }

    private SignedHead SignOver(ulong treeId, MerkleTree tree, long size)
    {
        long now = NowMs;
        byte[] head = EvidenceLayouts.TreeHead(_relayId, treeId, size, now, tree.Root(size));
        return new SignedHead(size, now, head, _key.Sign(head));
    }

    /// <summary>Closes the current tree (its final head covers every statement) and begins the next.</summary>
    private void Rotate()
    {
        SignHead();
        OpenTree closing = _current;
        closing.File.Dispose();
        _closed[closing.Id] = closing.Path;
        _closedCache = new ClosedTree(closing.Id, closing.Path, closing.Tree, closing.LastHead!);
        _current = OpenTree.Create(Directory, closing.Id + 1, NowMs);
        EvidenceLog.EvidenceTreeClosed(_logger, closing.Id, closing.Tree.Size, _current.Id);
        ApplyRetention();
    }

    /// <summary>Deletes closed trees older than the retention, then the oldest while the files exceed the size cap.</summary>
    private void ApplyRetention()
    {
        DateTime cutoff = _clock.GetUtcNow().UtcDateTime - _options.Retention;
        var sizes = new List<(ulong Id, string Path, long Bytes, DateTime Written)>();
        foreach ((ulong id, string path) in _closed)
        {
            var info = new FileInfo(path);
            sizes.Add((id, path, info.Exists ? info.Length : 0, info.Exists ? info.LastWriteTimeUtc : DateTime.MinValue));
        }

        long total = sizes.Sum(s => s.Bytes);
        int old = 0, over = 0;
        foreach ((ulong id, string path, long bytes, DateTime written) in sizes)
        {
            bool expired = written < cutoff;
            if (!expired && total <= _options.MaxBytes)
            {
                break;
            }

            File.Delete(path);
            _closed.Remove(id);
            if (_closedCache?.Id == id)
            {
                _closedCache = null;
            }

            total -= bytes;
            _ = expired ? old++ : over++;
        }

        if (old + over > 0)
        {
            Interlocked.Add(ref _treesDeleted, old + over);
            EvidenceLog.EvidenceTreesDeleted(_logger, old + over, over == 0 ? "older than the retention" : old == 0 ? "over the size cap" : "older than the retention, or over the size cap");
        }
    }

    /// <summary>
    /// An envelope the log replayed at start: its accepted statement is written now unless the index has it (the
    /// relay was killed with it still queued for the writer). Synchronous, before <see cref="Start"/>: not the data path.
    /// </summary>
    public void Recovered(in Routing.RecoveredEnvelope envelope)
    {
        if (envelope.Sender is not { } sender || envelope.Recipient is not { } recipient)
        {
            return; // a partner no longer approved: nobody may ask for it
        }

        UInt128 messageId = envelope.MessageId;
        lock (_gate)
        {
            if (_failed || _index.HasAccepted(sender.Id, messageId))
            {
                return;
            }

            var item = new EvidenceItem { Kind = EvidenceItemKind.Accepted, Sender = sender, Recipient = recipient, MessageId = messageId, AtMs = envelope.AcceptedAtMs };
            EvidenceRecorder.UserHash(sender.Id, envelope.SenderUser, item.SenderUserHash);
            EvidenceRecorder.UserHash(recipient.Id, envelope.RecipientUser, item.RecipientUserHash);
            EvidenceRecorder.CiphertextHash(envelope.Ciphertext, item.CiphertextSha256);
            try
            {
                Process(item);
                Rederived++;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                _failed = true;
                EvidenceLog.EvidenceWriteFailed(_logger, _current.Path, ex.Message);
            }
        }
    }

    /// <summary>Accepted statements re-derived from the log at start (<see cref="Recovered"/>).</summary>
    public long Rederived { get; private set; }

    // ---- answering --------------------------------------------------------------------------------------------

    /// <summary>
    /// The proofs for message <paramref name="messageId"/> of <paramref name="senderPartner"/>, if <paramref name="asker"/>
    /// is its sender or recipient partner; otherwise, and for an unknown message, <see cref="EvidenceAnswer.None"/>.
    /// </summary>
    public async Task<EvidenceAnswer> LookupAsync(string asker, string senderPartner, ReadOnlyMemory<byte> messageId)
    {
        if (messageId.Length != 16)
        {
            return EvidenceAnswer.None;
        }

        var key = new MessageKey(senderPartner, BinaryPrimitives.ReadUInt128BigEndian(messageId.Span));
        IndexEntry entry;
        bool found;
        lock (_gate)
        {
            found = _index.TryFind(key.Sender, key.MessageId, out StatementLocation accepted, out StatementLocation delivery, out string? recipient);
            entry = new IndexEntry { Accepted = accepted, Delivery = delivery, Recipient = recipient };
        }

        if ((!found || entry.Accepted.TreeId == 0) && asker == senderPartner)
        {
            // Not in memory (older than the index): the files, for the sender partner only. A scan takes long for an
            // unknown id and stops early for a known one, so for any other asker it would tell by its time whether
            // another partner's message exists; without it, a foreign id and an unknown one cost the same lookup.
            IndexEntry scanned = await Task.Run(() => Scan(key)).ConfigureAwait(false);
            entry = new IndexEntry
            {
                Accepted = entry.Accepted.TreeId != 0 ? entry.Accepted : scanned.Accepted,
                Delivery = entry.Delivery.TreeId != 0 ? entry.Delivery : scanned.Delivery,
                Recipient = entry.Recipient ?? scanned.Recipient,
            };
        }

        // Who may know: only the two partners of the message. Anyone else gets what an unknown id gets, decided before
        // anything that could differ (pending heads, proofs).
        if (entry.Recipient is null || (asker != senderPartner && asker != entry.Recipient))
        {
            return EvidenceAnswer.None;
        }

        var proofs = new List<EvidenceProof>(2);
        bool pending = false;
        foreach (StatementLocation location in (StatementLocation[])[entry.Accepted, entry.Delivery])
        {
            if (location.TreeId == 0)
            {
                continue;
            }

            EvidenceProof? proof = await ProveAsync(key, location).ConfigureAwait(false);
            if (proof is null)
            {
                pending |= location.TreeId == CurrentTreeId;
            }
            else
            {
                proofs.Add(proof);
            }
        }

        return new EvidenceAnswer(proofs, pending ? (uint)Math.Max(1, _options.SignInterval.TotalMilliseconds) : 0);
    }

    /// <summary>The proof of the statement at <paramref name="location"/>; null when no signed head covers it yet or its tree was deleted.</summary>
    private async Task<EvidenceProof?> ProveAsync(MessageKey key, StatementLocation location)
    {
        List<byte[]> path;
        SignedHead head;
        string file;
        lock (_gate)
        {
            if (location.TreeId == _current.Id)
            {
                if (_current.LastHead is not { } last || last.Size <= location.Leaf)
                {
                    return null;
                }

                head = last;
                path = _current.Tree.InclusionProof(location.Leaf, head.Size);
                file = _current.Path;
                goto read;
            }

            if (_closedCache is { } cached && cached.Id == location.TreeId)
            {
                head = cached.Head;
                path = cached.Tree.InclusionProof(location.Leaf, head.Size);
                file = cached.Path;
                goto read;
            }

            if (!_closed.TryGetValue(location.TreeId, out string? closedPath))
            {
                return null; // deleted by retention
            }

            file = closedPath;
        }

        try
        {
            ClosedTree? loaded = await Task.Run(() => LoadClosed(location.TreeId, file)).ConfigureAwait(false);
            if (loaded is null || location.Leaf >= loaded.Head.Size)
            {
                return null;
            }

            lock (_gate)
            {
                _closedCache = loaded;
            }

            head = loaded.Head;
            path = loaded.Tree.InclusionProof(location.Leaf, head.Size);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }

    read:
        byte[] statement;
        try
        {
            statement = EvidenceTreeFile.ReadStatement(file, location.Offset, location.Length);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        if (!EvidenceLayouts.IsAbout(statement, key.Sender, key.MessageId))
        {
            return null; // the index matched another message's key hash
        }

        var proof = new EvidenceProof
        {
            Statement = ByteString.CopyFrom(statement),
            LeafIndex = (ulong)location.Leaf,
            TreeSize = (ulong)head.Size,
            TreeHead = ByteString.CopyFrom(head.Head),
            TreeHeadSignature = ByteString.CopyFrom(head.Signature),
        };
        proof.AuditPath.AddRange(path.Select(ByteString.CopyFrom));
        return proof;
    }

    private static ClosedTree? LoadClosed(ulong treeId, string path)
    {
        if (EvidenceTreeFile.Read(path) is not { Heads.Count: > 0 } contents)
        {
            return null;
        }

        var tree = new MerkleTree();
        foreach (LeafRecord leaf in contents.Leaves)
        {
            tree.AppendLeafHash(leaf.LeafHash);
        }

        SignedHead head = contents.Heads[^1];
        return head.Size <= tree.Size ? new ClosedTree(treeId, path, tree, head) : null;
    }

    /// <summary>
    /// The newest signed head of tree <paramref name="treeId"/> and the RFC 9162 consistency proof from its first
    /// <paramref name="fromSize"/> statements to it; null when the tree is not kept or is smaller. About the relay, not
    /// about a message: the same for every asker.
    /// </summary>
    public async Task<(SignedHead Head, List<byte[]> Proof)?> ConsistencyAsync(ulong treeId, long fromSize)
    {
        string? path;
        lock (_gate)
        {
            if (treeId == _current.Id)
            {
                return _current.LastHead is { } last && fromSize <= last.Size ? (last, _current.Tree.ConsistencyProof(fromSize, last.Size)) : null;
            }

            if (_closedCache is { } cached && cached.Id == treeId)
            {
                return fromSize <= cached.Head.Size ? (cached.Head, cached.Tree.ConsistencyProof(fromSize, cached.Head.Size)) : null;
            }

            if (!_closed.TryGetValue(treeId, out path))
            {
                return null;
            }
        }

        try
        {
            ClosedTree? loaded = await Task.Run(() => LoadClosed(treeId, path)).ConfigureAwait(false);
            if (loaded is null)
            {
                return null;
            }

            lock (_gate)
            {
                _closedCache = loaded;
            }

            return fromSize <= loaded.Head.Size ? (loaded.Head, loaded.Tree.ConsistencyProof(fromSize, loaded.Head.Size)) : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Reads the tree files newest first for the statements of <paramref name="key"/>; stops at its accepted statement.</summary>
    private IndexEntry Scan(MessageKey key)
    {
        List<(ulong Id, string Path)> trees;
        lock (_gate)
        {
            trees = [.. _closed.Select(c => (c.Key, c.Value)), (_current.Id, _current.Path)];
        }

        var found = new IndexEntry();
        for (int t = trees.Count - 1; t >= 0; t--)
        {
            EvidenceTreeFile.Contents? contents;
            try
            {
                contents = EvidenceTreeFile.Read(trees[t].Path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                continue; // deleted meanwhile
            }

            for (int i = (contents?.Leaves.Count ?? 0) - 1; i >= 0; i--)
            {
                LeafRecord leaf = contents!.Leaves[i];
                ReadOnlySpan<byte> bytes = contents.Bytes.AsSpan((int)leaf.Offset, leaf.Length);
                if (!EvidenceLayouts.IsAbout(bytes, key.Sender, key.MessageId) || EvidenceLayouts.ParseStatement(bytes, out _) is not { } statement)
                {
                    continue;
                }

                var location = new StatementLocation(trees[t].Id, i, leaf.Offset, leaf.Length);
                found.Recipient ??= statement.RecipientPartner;
                if (statement.Kind == StatementKind.Accepted)
                {
                    found.Accepted = location;
                    return found;
                }

                if (found.Delivery.TreeId == 0)
                {
                    found.Delivery = location;
                }
            }
        }

        return found;
    }

    // ---- for tests and diagnostics ----------------------------------------------------------------------------

    /// <summary>The signed heads of the current tree so far, oldest first.</summary>
    public IReadOnlyList<SignedHead> CurrentHeads()
    {
        lock (_gate)
        {
            return [.. _current.Heads];
        }
    }

    /// <summary>The RFC 9162 consistency proof between two sizes of the current tree.</summary>
    public List<byte[]> ConsistencyProof(long oldSize, long newSize)
    {
        lock (_gate)
        {
            return _current.Tree.ConsistencyProof(oldSize, newSize);
        }
    }

    /// <summary>Waits until every statement queued so far is written and covered by a signed head (tests, shutdown).</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        while (_queue.Reader.Count > 0)
        {
            await Task.Delay(5, cancellationToken).ConfigureAwait(false);
        }

        lock (_gate)
        {
            if (!_failed)
            {
                _current.File.Flush();
                SignHead();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _drain.ConfigureAwait(false);
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _signer.ConfigureAwait(false);
        lock (_gate)
        {
            try
            {
                if (!_failed)
                {
                    SignHead();
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                EvidenceLog.EvidenceWriteFailed(_logger, _current.Path, ex.Message);
            }

            _current.File.Dispose();
            if (_current.Tree.Size == 0)
            {
                File.Delete(_current.Path);
            }
        }

        _stopping.Dispose();
    }

    private readonly record struct MessageKey(string Sender, UInt128 MessageId);

    private struct IndexEntry
    {
        public StatementLocation Accepted;
        public StatementLocation Delivery;
        public string? Recipient;
    }

    private sealed record ClosedTree(ulong Id, string Path, MerkleTree Tree, SignedHead Head);

    private sealed class OpenTree
    {
        public required ulong Id { get; init; }
        public required string Path { get; init; }
        public required long CreatedMs { get; init; }
        public required FileStream File { get; init; }
        public MerkleTree Tree { get; } = new();
        public List<SignedHead> Heads { get; } = [];
        public SignedHead? LastHead => Heads.Count > 0 ? Heads[^1] : null;

        public static OpenTree Create(string directory, ulong id, long nowMs)
        {
            string path = System.IO.Path.Combine(directory, EvidenceTreeFile.NameOf(id));
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.Read | FileShare.Delete, BufferSize = 64 * 1024 };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead;
            }

            var file = new FileStream(path, options);
            file.Write(EvidenceTreeFile.Header(id, nowMs));
            file.Flush(flushToDisk: true);
            return new OpenTree { Id = id, Path = path, CreatedMs = nowMs, File = file };
        }
    }
}

/// <summary>What an EvidenceRequest is answered with: proofs (accepted first, then delivery), and a retry hint when a statement is not yet covered by a signed head.</summary>
internal sealed record EvidenceAnswer(IReadOnlyList<EvidenceProof> Proofs, uint RetryAfterMs)
{
    public static EvidenceAnswer None { get; } = new([], 0);

    public EvidenceReply ToReply(ulong requestId)
    {
        var reply = new EvidenceReply { RequestId = requestId, RetryAfterMs = RetryAfterMs };
        reply.Proofs.AddRange(Proofs);
        return reply;
    }
}
