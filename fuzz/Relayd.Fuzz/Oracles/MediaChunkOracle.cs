using System.Buffers;
using System.Buffers.Binary;
using Relayd.Protocol;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;

namespace Relayd.Fuzz.Oracles;

/// <summary>
/// <see cref="MediaChunkWire.TryRead"/> takes a frame body. When it claims a MediaChunk, the generated parser must
/// read the same frame as a MediaChunk with the same transfer id, offset and data (the relay spools at the offset it
/// read; the recipient's library sees what protobuf reads), and every segmentation must agree. MALFORMED_FRAME and
/// "not the fast path" (false) are allowed outcomes.
/// </summary>
internal static class MediaChunkOracle
{
    private const string Reader = "MediaChunkWire.TryRead";

    public static void Check(byte[] input) =>
        WireAgreement.AcrossSegmentations(Reader, input, frame =>
        {
            if (!MediaChunkWire.TryRead(frame, out UInt128 transferId, out ulong offset, out ReadOnlySequence<byte> data))
            {
                return "not a chunk-only frame";
            }

            Agree(input, transferId, offset, data);
            return "read";
        });

    private static void Agree(byte[] input, UInt128 transferId, ulong offset, in ReadOnlySequence<byte> data)
    {
        Frame parsed = WireAgreement.ParseAccepted(Reader, input);
        if (parsed.BodyCase != Frame.BodyOneofCase.MediaChunk)
        {
            throw new OracleViolationException($"{Reader} read a media chunk, Google.Protobuf a {parsed.BodyCase}");
        }

        MediaChunk chunk = parsed.MediaChunk;
        Span<byte> id = stackalloc byte[MediaChunkWire.TransferIdBytes];
        BinaryPrimitives.WriteUInt128BigEndian(id, transferId);
        WireAgreement.Same(Reader, "transfer_id", id, chunk.TransferId.Span);
        WireAgreement.Same(Reader, "offset", offset, chunk.Offset);
        WireAgreement.Same(Reader, "data", data, chunk.Data);
    }
}
