using System.Buffers;
using Google.Protobuf;
using Relayd.Protocol.V1;

namespace Relayd.Protocol.Internal;

/// <summary>Writes frames in protobuf-delimited form (varint length, then the serialized <see cref="Frame"/>).</summary>
internal static class FrameWriter
{
    /// <summary>Serializes <paramref name="frame"/> with its length prefix straight into <paramref name="output"/>.</summary>
    /// <returns>Bytes written, prefix included.</returns>
    public static int Write(IBufferWriter<byte> output, Frame frame) => Write(output, frame, frame.CalculateSize());

    /// <summary>As <see cref="Write(IBufferWriter{byte}, Frame)"/>, with the size the caller already computed.</summary>
    public static int Write(IBufferWriter<byte> output, Frame frame, int size)
    {
        int prefix = CodedOutputStream.ComputeLengthSize(size);
        Span<byte> header = output.GetSpan(prefix);
        int written = ProtoWire.WriteVarint(header, (ulong)size);
        output.Advance(written);
        frame.WriteTo(output);
        return prefix + size;
    }
}
