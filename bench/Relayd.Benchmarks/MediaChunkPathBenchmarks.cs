using System.Buffers;
using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;
using Relayd.Media;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;
using Relayd.Routing;

namespace Relayd.Benchmarks;

/// <summary>
/// The relay's per-chunk media path without sockets and TLS: frame read (varint + limit), MediaChunk read in place,
/// offset/credit checks, pwrite of the chunk into the spool file, running SHA-256, and with the recipient connected
/// the cut-through: copy into the forwarding queue, take it as a ready frame (what the writer hands to TLS), give the
/// buffer back and grant the sender credit (a MediaCredit frame's worth, written into a scratch buffer).
/// One operation is one 64 KiB chunk; each iteration is a fresh 256 MiB transfer, discarded at the end (wrong
/// digest at MediaClose) so the spool never fills, and so that the fsync of a completed blob is not in the figure.
/// </summary>
[MemoryDiagnoser]
[InvocationCount(ChunksPerTransfer, 1)]
public class MediaChunkPathBenchmarks : IDisposable
{
    private const int ChunkBytes = 64 * 1024;
    private const int ChunksPerTransfer = 4096;

    private readonly byte[] _frame = new byte[MediaChunkWire.MaxHeaderBytes + ChunkBytes];
    private readonly byte[] _creditScratch = new byte[MediaCreditWire.MaxFrameBytes];
    private readonly MediaForwardQueue _queue = new();
    private string _spoolDirectory = "";
    private MediaRouter _router = null!;
    private BenchPeer _alpha = null!;
    private BenchPeer _beta = null!;
    private MediaTransfer? _transfer;
    private UInt128 _transferId;
    private long _offset;
    private ulong _nextId;

    /// <summary>Recipient connected (cut-through, credit from its progress) or offline (spool only, credit from the disk).</summary>
    [Params(true, false)]
    public bool RecipientConnected { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var options = new RelayOptions();
        options.Partners.Add(new PartnerOptions { Id = "alpha" });
        options.Partners.Add(new PartnerOptions { Id = "beta" });
        _spoolDirectory = Directory.CreateTempSubdirectory("relayd-bench-spool-").FullName;
        options.Media.SpoolDirectory = _spoolDirectory;
        var directory = new PartnerDirectory(options);
        _router = new MediaRouter(options.Media, directory, options.Limits, new MediaSpool(options.Media.SpoolDirectory), NullLogger.Instance, TimeProvider.System, new Relayd.Diagnostics.RelayMetrics());
        _router.Start();
        _alpha = new BenchPeer(directory.Find("alpha")!, 1, _creditScratch);
        _beta = new BenchPeer(directory.Find("beta")!, 2, _creditScratch);
        RandomNumberGenerator.Fill(_frame.AsSpan(MediaChunkWire.MaxHeaderBytes));
        if (RecipientConnected)
        {
            _router.Attach(_beta);
        }
    }

    [IterationSetup]
    public void OpenTransfer()
    {
        _transferId = ++_nextId;
        _offset = 0;
        var open = new MediaOpen
        {
            TransferId = MediaChunkWire.ToByteString(_transferId),
            SenderPartner = "alpha",
            SenderUser = ByteString.CopyFromUtf8("alice"),
            RecipientPartner = "beta",
            RecipientUser = ByteString.CopyFromUtf8("bob"),
            ContentKind = ContentKind.Video,
            TotalSize = (ulong)ChunksPerTransfer * ChunkBytes,
            Sha256 = ByteString.CopyFrom(new byte[32]), // never matches: MediaClose discards the blob
            ChunkSize = ChunkBytes,
        };
        _router.Open(_alpha, open);
        _transfer = null;
        if (RecipientConnected)
        {
            // As the recipient's writer does on its first pass: take the transfer, find nothing to read back, forward.
            _transfer = _router.TakeOutbound(_beta) ?? throw new InvalidOperationException("no cut-through transfer");
            if (!_transfer.TryStartForwarding(_beta, _queue, 0))
            {
                throw new InvalidOperationException("forwarding did not start");
            }
        }
    }

    [Benchmark]
    public long Chunk()
    {
        // The sender's frame as it sits in the session's input pipe: header in front of the data.
        Span<byte> headerBytes = stackalloc byte[MediaChunkWire.MaxHeaderBytes];
        int header = MediaChunkWire.WriteHeader(headerBytes, _transferId, (ulong)_offset, ChunkBytes);
        int start = MediaChunkWire.MaxHeaderBytes - header;
        headerBytes[..header].CopyTo(_frame.AsSpan(start));
        var input = new ReadOnlySequence<byte>(_frame, start, header + ChunkBytes);
        if (!FrameReader.TryReadFrame(ref input, int.MaxValue, out ReadOnlySequence<byte> frame)
            || !MediaChunkWire.TryRead(frame, out UInt128 id, out ulong offset, out ReadOnlySequence<byte> data))
        {
            throw new InvalidOperationException("not a chunk frame");
        }

        _router.Chunk(_alpha, id, offset, data);
        _offset += ChunkBytes;
        if (_transfer is not null)
        {
            // The recipient's writer: the queued chunk as a frame (handed to TLS there), buffer back, credit.
            if (!_queue.TryTake(out ForwardedChunk chunk))
            {
                throw new InvalidOperationException("nothing forwarded");
            }

            _queue.Return(chunk);
            _transfer.OnForwarded(chunk.End);
        }

        return _offset;
    }

    [IterationCleanup]
    public void DiscardTransfer()
    {
        while (_offset < (long)ChunksPerTransfer * ChunkBytes)
        {
            Chunk(); // BenchmarkDotNet's jitting and pilot stages run fewer invocations than a whole transfer
        }

        _router.Close(_alpha, new MediaClose { TransferId = MediaChunkWire.ToByteString(_transferId) });
        if (_transfer is not null)
        {
            _transfer.StopForwarding(_queue);
            _queue.Reset();
        }

        if (_alpha.LastError is not ErrorCode.MediaDigestMismatch)
        {
            throw new InvalidOperationException($"the transfer ended with {_alpha.LastError}, not the expected digest mismatch: a chunk was refused");
        }

        _alpha.LastError = ErrorCode.Unspecified;
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _router.Dispose();
        Directory.Delete(_spoolDirectory, recursive: true);
        GC.SuppressFinalize(this);
    }

    /// <summary>A session as the media router sees it; credit is written out as the session's writer would.</summary>
    private sealed class BenchPeer(PartnerInfo partner, long connectionId, byte[] creditScratch) : IMediaPeer
    {
        public PartnerInfo Partner { get; } = partner;

        public long ConnectionId { get; } = connectionId;

        public ErrorCode LastError { get; set; }

        public void Reply(Frame frame)
        {
            if (frame.BodyCase == Frame.BodyOneofCase.Error)
            {
                LastError = frame.Error.Code;
            }
        }

        public void Post(Frame frame) => Reply(frame);

        public void WakeMediaWriter()
        {
        }

        public void AnnounceCredit(MediaTransfer transfer)
        {
            long grant = transfer.TakeCreditGrant(this);
            if (grant > 0)
            {
                MediaCreditWire.Write(creditScratch, transfer.Id, (ulong)grant);
            }
        }
    }
}
