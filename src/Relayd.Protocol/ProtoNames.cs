using Google.Protobuf.Reflection;
using Relayd.Protocol.V1;

namespace Relayd.Protocol;

/// <summary>
/// The names relayd.proto gives enum values (<c>MEDIA_DIGEST_MISMATCH</c>), for everything a person reads: log lines,
/// error messages, command output. The docs use these; the C# names (<c>MediaDigestMismatch</c>) stay in code.
/// </summary>
/// <remarks>
/// Read once from the file descriptor protoc embeds in the generated code: plain data, no System.Reflection, so it
/// survives trimming and NativeAOT, and a value added to the .proto gets its name without touching this class.
/// </remarks>
internal static class ProtoNames
{
    private static readonly string?[] ErrorCodes = ByNumber("ErrorCode");
    private static readonly string?[] ReceiptStatuses = ByNumber("ReceiptStatus");
    private static readonly string?[] ContentKinds = ByNumber("ContentKind");

    /// <summary>The proto name of <paramref name="code"/>, e.g. <c>SHUTTING_DOWN</c>; "ErrorCode N" for a number this build does not know.</summary>
    public static string Of(ErrorCode code) => Lookup(ErrorCodes, (int)code) ?? $"ErrorCode {(int)code}";

    /// <summary>The proto name of <paramref name="status"/>, e.g. <c>DELIVERED</c>; "ReceiptStatus N" for a number this build does not know.</summary>
    public static string Of(ReceiptStatus status) => Lookup(ReceiptStatuses, (int)status) ?? $"ReceiptStatus {(int)status}";

    /// <summary>The proto name of a content kind, e.g. <c>CONTENT_KIND_IMAGE</c>; "content kind N" for a number this build does not know.</summary>
    public static string OfContentKind(int contentKind) => Lookup(ContentKinds, contentKind) ?? $"content kind {contentKind}";

    private static string? Lookup(string?[] names, int number) => (uint)number < (uint)names.Length ? names[number] : null;

    private static string?[] ByNumber(string enumName)
    {
        EnumDescriptor descriptor = RelaydReflection.Descriptor.FindTypeByName<EnumDescriptor>(enumName);
        var names = new string?[descriptor.Values.Max(v => v.Number) + 1];
        foreach (EnumValueDescriptor value in descriptor.Values)
        {
            names[value.Number] = value.Name;
        }

        return names;
    }
}
