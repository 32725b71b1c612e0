using System.Text.RegularExpressions;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Framing;

/// <summary>People read the names relayd.proto and the docs use (MEDIA_DIGEST_MISMATCH), never the C# ones (MediaDigestMismatch).</summary>
public sealed partial class ProtoNameTests
{
    [Fact]
    public void Every_error_code_prints_as_its_name_in_relayd_proto()
    {
        Dictionary<int, string> declared = EnumValuesInProto("ErrorCode");

        Assert.Equal(Enum.GetValues<ErrorCode>().Length, declared.Count);
        foreach ((int number, string name) in declared)
        {
            Assert.Equal(name, ProtoNames.Of((ErrorCode)number));
        }
    }

    [Fact]
    public void Every_receipt_status_prints_as_its_name_in_relayd_proto()
    {
        Dictionary<int, string> declared = EnumValuesInProto("ReceiptStatus");

        Assert.Equal(Enum.GetValues<ReceiptStatus>().Length, declared.Count);
        foreach ((int number, string name) in declared)
        {
            Assert.Equal(name, ProtoNames.Of((ReceiptStatus)number));
        }
    }

    [Fact]
    public void A_code_this_build_does_not_know_prints_as_its_number()
    {
        Assert.Equal("ErrorCode 9999", ProtoNames.Of((ErrorCode)9999));
        Assert.Equal("ReceiptStatus -1", ProtoNames.Of((ReceiptStatus)(-1)));
    }

    [Fact]
    public void A_relay_exception_names_its_code_as_the_proto_does()
    {
        var refusal = new RelayException(ErrorCode.MediaDigestMismatch, "the SHA-256 differs");

        Assert.Equal("MEDIA_DIGEST_MISMATCH: the SHA-256 differs", refusal.Message);
    }

    private static Dictionary<int, string> EnumValuesInProto(string enumName)
    {
        string proto = File.ReadAllText(Path.Combine(ExternalProcess.RepositoryRoot, "src", "Relayd.Protocol", "Protos", "relayd", "v1", "relayd.proto"));
        Match body = Regex.Match(proto, $@"enum {enumName} \{{(?<body>[^}}]*)\}}");
        Assert.True(body.Success, $"no enum {enumName} in relayd.proto");
        return EnumValue().Matches(body.Groups["body"].Value).ToDictionary(m => int.Parse(m.Groups["number"].Value, System.Globalization.CultureInfo.InvariantCulture), m => m.Groups["name"].Value);
    }

    [GeneratedRegex(@"^\s*(?<name>[A-Z][A-Z0-9_]*)\s*=\s*(?<number>-?\d+)\s*;", RegexOptions.Multiline)]
    private static partial Regex EnumValue();
}
