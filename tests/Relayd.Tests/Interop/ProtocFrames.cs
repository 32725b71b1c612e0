using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Interop;

/// <summary>
/// Frames written and read as an independent peer would: protoc encodes and decodes them from text format, the varint
/// length is written and read by hand, the bytes go over a bare TLS connection. Shared by the interop frame tests.
/// </summary>
internal static class ProtocFrames
{
    public static string ProtoRoot => Path.Combine(ExternalProcess.RepositoryRoot, "src", "Relayd.Protocol", "Protos");

    public static async Task SendAsync(RawPartnerConnection connection, string textFormat) =>
        await connection.Stream.WriteAsync(Delimit(await EncodeAsync(textFormat)), TestContext.Current.CancellationToken);

    /// <summary>The next frame from the relay, decoded by protoc into text format.</summary>
    public static async Task<string> ReceiveAsync(RawPartnerConnection connection) => await DecodeAsync(await ReadRawFrameAsync(connection));

    public static async Task<byte[]> EncodeAsync(string textFormat)
    {
        ExternalProcess.Result result = await ExternalProcess.RunAsync(
            "protoc", [$"-I{ProtoRoot}", "--encode=relayd.v1.Frame", "relayd/v1/relayd.proto"], System.Text.Encoding.UTF8.GetBytes(textFormat));
        Assert.True(result.ExitCode == 0, "protoc --encode failed: " + result.StandardError);
        return result.RawOutput;
    }

    public static async Task<string> DecodeAsync(byte[] frame)
    {
        ExternalProcess.Result result = await ExternalProcess.RunAsync("protoc", [$"-I{ProtoRoot}", "--decode=relayd.v1.Frame", "relayd/v1/relayd.proto"], frame);
        Assert.True(result.ExitCode == 0, "protoc --decode failed: " + result.StandardError);
        return result.StandardOutput;
    }

    /// <summary>Prefixes the varint length by hand: independent of the library's framing code.</summary>
    public static byte[] Delimit(byte[] message)
    {
        var bytes = new List<byte>();
        uint length = (uint)message.Length;
        while (length >= 0x80)
        {
            bytes.Add((byte)(length | 0x80));
            length >>= 7;
        }

        bytes.Add((byte)length);
        bytes.AddRange(message);
        return [.. bytes];
    }

    /// <summary>The next frame's body, its varint length read by hand.</summary>
    public static async Task<byte[]> ReadRawFrameAsync(RawPartnerConnection connection)
    {
        int length = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte[] one = new byte[1];
            await connection.Stream.ReadExactlyAsync(one, TestContext.Current.CancellationToken).AsTask().WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
            length |= (one[0] & 0x7F) << shift;
            if (one[0] < 0x80)
            {
                break;
            }
        }

        byte[] body = new byte[length];
        await connection.Stream.ReadExactlyAsync(body, TestContext.Current.CancellationToken).AsTask().WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        return body;
    }
}
