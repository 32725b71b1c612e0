using System.Formats.Asn1;
using System.Security.Cryptography.X509Certificates;

namespace Relayd.Security;

/// <summary>
/// Reads the partner id from a client certificate: the subject alternative name URI
/// <c>relayd://partner/&lt;id&gt;</c>. Exactly one such URI must be present.
/// </summary>
public static class PartnerIdentity
{
    public const string UriPrefix = "relayd://partner/";
    private const string SubjectAltNameOid = "2.5.29.17";
    private static readonly Asn1Tag UriTag = new(TagClass.ContextSpecific, 6);

    /// <summary>Returns the partner id, or null with the reason it could not be read.</summary>
    public static string? TryRead(X509Certificate2 certificate, out string reason)
    {
        X509Extension? san = certificate.Extensions[SubjectAltNameOid];
        if (san is null)
        {
            reason = "certificate has no subjectAltName";
            return null;
        }

        string? id = null;
        try
        {
            var reader = new AsnReader(san.RawData, AsnEncodingRules.DER);
            AsnReader names = reader.ReadSequence();
            while (names.HasData)
            {
                Asn1Tag tag = names.PeekTag();
                if (tag.HasSameClassAndValue(UriTag))
                {
                    string uri = names.ReadCharacterString(UniversalTagNumber.IA5String, UriTag);
                    if (uri.StartsWith(UriPrefix, StringComparison.Ordinal))
                    {
                        if (id is not null)
                        {
                            reason = "certificate names more than one partner";
                            return null;
                        }

                        id = uri[UriPrefix.Length..];
                    }
                }
                else
                {
                    names.ReadEncodedValue();
                }
            }
        }
        catch (AsnContentException ex)
        {
            reason = "subjectAltName is not valid DER: " + ex.Message;
            return null;
        }

        if (string.IsNullOrEmpty(id))
        {
            reason = $"certificate has no {UriPrefix}<id> URI in its subjectAltName";
            return null;
        }

        reason = "";
        return id;
    }
}
