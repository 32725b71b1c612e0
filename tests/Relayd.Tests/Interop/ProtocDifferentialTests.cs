using System.Buffers;
using System.Text;
using CsCheck;
using Google.Protobuf;
using Relayd.Protocol;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;
using Relayd.Routing;
using Relayd.Tests.Framing;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Interop;

/// <summary>
/// A second, independent parser: protoc's C++ runtime. Mutated envelopes that the relay's reader accepts are decoded
/// by <c>protoc --decode</c> (which must accept every one of them, UTF-8 checks included) and its reading is compared
/// with the relay's, field by field.
/// </summary>
public sealed class ProtocDifferentialTests
{
    private const int Samples = 5_000;

    [Fact]
    public async Task Envelopes_the_relay_accepts_decode_with_protoc_to_the_same_routing_fields()
    {
        var accepted = new List<(byte[] Frame, EnvelopeHeader Header)>();
        ParserDifferentialTests.MutatedEnvelopes.Sample(
            frame =>
            {
                try
                {
                    if (EnvelopeHeader.TryRead(new ReadOnlySequence<byte>(frame), out EnvelopeHeader header))
                    {
                        accepted.Add((frame, header));
                    }
                }
                catch (RelayException)
                {
                    // refused: nothing to compare
                }
            },
            iter: Samples,
            threads: 1);

        Assert.True(accepted.Count > Samples / 10, $"only {accepted.Count} of {Samples} mutants were accepted");
        string dir = Directory.CreateTempSubdirectory("relayd-protoc-diff-").FullName;
        try
        {
            // A batch message lets one protoc run parse every sample.
            await File.WriteAllTextAsync(Path.Combine(dir, "batch.proto"), "syntax = \"proto3\";\npackage difftest;\nimport \"relayd/v1/relayd.proto\";\nmessage Batch { repeated relayd.v1.Frame frames = 1; }\n", TestContext.Current.CancellationToken);
            var batch = new MemoryStream();
            var output = new CodedOutputStream(batch);
            foreach ((byte[] frame, _) in accepted)
            {
                output.WriteTag(1, WireFormat.WireType.LengthDelimited);
                output.WriteBytes(ByteString.CopyFrom(frame));
            }

            output.Flush();
            // protoc stops reading at the first bytes it rejects, so it reads the batch from a file, not a pipe.
            string batchFile = Path.Combine(dir, "batch.bin");
            await File.WriteAllBytesAsync(batchFile, batch.ToArray(), TestContext.Current.CancellationToken);
            string[] args = [$"-I{ProtoRoot}", $"-I{dir}", "--decode=difftest.Batch", "batch.proto"];
            ExternalProcess.Result decoded = await ExternalProcess.RunAsync("sh", ["-c", "exec protoc \"$@\" < \"$0\"", batchFile, .. args]);
            if (decoded.ExitCode != 0)
            {
                Assert.Fail("protoc (C++) rejects an envelope the relay accepted: " + await FirstRejectedAsync(accepted.Select(a => a.Frame), dir));
            }

            // protoc's reading, from its text output: the envelope's own fields are the lines indented by 4.
            List<Dictionary<string, string>> readings = EnvelopeFieldsOf(decoded.StandardOutput);
            Assert.Equal(accepted.Count, readings.Count);
            int i = 0;
            foreach (Dictionary<string, string> protocReading in readings)
            {
                (byte[] frame, EnvelopeHeader header) = accepted[i++];
                var wire = new ReadOnlySequence<byte>(frame);
                string at = $"sample {i}: {Convert.ToHexString(frame)}";
                Assert.True(Bytes(wire, header.SenderPartner).AsSpan().SequenceEqual(Field(protocReading, "sender_partner")), at);
                Assert.True(Bytes(wire, header.RecipientPartner).AsSpan().SequenceEqual(Field(protocReading, "recipient_partner")), at);
                Assert.True(Bytes(wire, header.MessageIdSlice).AsSpan().SequenceEqual(Field(protocReading, "message_id")), at);
                Assert.True(Bytes(wire, header.SenderUser).AsSpan().SequenceEqual(Field(protocReading, "sender_user")), at);
                Assert.True(Bytes(wire, header.RecipientUser).AsSpan().SequenceEqual(Field(protocReading, "recipient_user")), at);
                Assert.True(Bytes(wire, header.Ciphertext).AsSpan().SequenceEqual(Field(protocReading, "ciphertext")), at);
                Assert.True(header.ContentKind == Kind(protocReading), at);
                Assert.True(header.ExpiresAtMs == Number(protocReading, "expires_at_ms"), at);
                Assert.True(header.ClientTimestampMs == Number(protocReading, "client_timestamp_ms"), at);
            }

        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static List<Dictionary<string, string>> EnvelopeFieldsOf(string text)
    {
        var envelopes = new List<Dictionary<string, string>>();
        Dictionary<string, string>? current = null;
        foreach (string line in text.Split('\n'))
        {
            if (line == "  envelope {")
            {
                current = [];
                envelopes.Add(current);
            }
            else if (current is not null && line.StartsWith("    ", StringComparison.Ordinal) && line[4] != ' ')
            {
                int colon = line.IndexOf(": ", StringComparison.Ordinal);
                if (colon > 0)
                {
                    current[line[4..colon]] = line[(colon + 2)..];
                }
            }
        }

        return envelopes;
    }

    /// <summary>A string/bytes field of protoc's text output, unescaped (C escapes: \n, \", \\, octal \ooo).</summary>
    private static byte[] Field(Dictionary<string, string> fields, string name)
    {
        if (!fields.TryGetValue(name, out string? quoted))
        {
            return [];
        }

        var bytes = new List<byte>();
        string s = quoted[1..^1];
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] != '\\')
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(s[i].ToString()));
                continue;
            }

            char c = s[++i];
            if (c is >= '0' and <= '7')
            {
                int end = i;
                while (end < s.Length && end < i + 3 && s[end] is >= '0' and <= '7')
                {
                    end++;
                }

                bytes.Add(Convert.ToByte(s[i..end], 8));
                i = end - 1;
            }
            else
            {
                bytes.Add(c switch { 'n' => (byte)'\n', 'r' => (byte)'\r', 't' => (byte)'\t', _ => (byte)c });
            }
        }

        return [.. bytes];
    }

    private static long Number(Dictionary<string, string> fields, string name) =>
        fields.TryGetValue(name, out string? value) ? long.Parse(value, System.Globalization.CultureInfo.InvariantCulture) : 0;

    private static int Kind(Dictionary<string, string> fields)
    {
        if (!fields.TryGetValue("content_kind", out string? value))
        {
            return 0;
        }

        return int.TryParse(value, System.Globalization.CultureInfo.InvariantCulture, out int number)
            ? number
            : RelaydReflection.Descriptor.EnumTypes.Single(e => e.Name == "ContentKind").FindValueByName(value).Number;
    }

    /// <summary>Finds the sample protoc rejects, for the failure message.</summary>
    private static async Task<string> FirstRejectedAsync(IEnumerable<byte[]> frames, string dir)
    {
        string file = Path.Combine(dir, "one.bin");
        foreach (byte[] frame in frames)
        {
            await File.WriteAllBytesAsync(file, frame);
            ExternalProcess.Result one = await ExternalProcess.RunAsync("sh", ["-c", "exec protoc \"$@\" < \"$0\"", file, $"-I{ProtoRoot}", "--decode=relayd.v1.Frame", "relayd/v1/relayd.proto"]);
            if (one.ExitCode != 0)
            {
                return $"{Convert.ToHexString(frame)}: {one.StandardError.Trim()}";
            }
        }

        return "none alone (the batch as a whole failed)";
    }

    private static string ProtoRoot => Path.Combine(ExternalProcess.RepositoryRoot, "src", "Relayd.Protocol", "Protos");

    private static byte[] Bytes(in ReadOnlySequence<byte> wire, FieldSlice slice) => wire.Slice(slice.Offset, slice.Length).ToArray();

    private static string Utf8(in ReadOnlySequence<byte> wire, FieldSlice slice) => Encoding.UTF8.GetString(Bytes(wire, slice));
}
