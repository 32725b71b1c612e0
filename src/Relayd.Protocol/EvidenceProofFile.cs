using System.Globalization;
using System.Text;
using Google.Protobuf;
using Relayd.Protocol.V1;

namespace Relayd.Protocol;

/// <summary>
/// A saved proof, what <c>relayd evidence verify FILE</c> reads (docs/evidence.md, "Proof files"): UTF-8 text, one
/// field a line, "name: value", bytes in standard base64, audit_path repeated leaf side first, after the line
/// <c>relayd-evidence-proof v1</c>. Text so that a shell (base64 -d) and a few lines of any language read it.
/// </summary>
public static class EvidenceProofFile
{
    /// <summary>The first line of a proof file.</summary>
    public const string FirstLine = "relayd-evidence-proof v1";

    /// <summary>The proof as a proof file's text.</summary>
    public static string Format(EvidenceProof proof)
    {
        ArgumentNullException.ThrowIfNull(proof);
        var text = new StringBuilder();
        text.Append(FirstLine).Append('\n');
        text.Append("statement: ").Append(proof.Statement.ToBase64()).Append('\n');
        text.Append("leaf_index: ").Append(proof.LeafIndex.ToString(CultureInfo.InvariantCulture)).Append('\n');
        text.Append("tree_size: ").Append(proof.TreeSize.ToString(CultureInfo.InvariantCulture)).Append('\n');
        foreach (ByteString hash in proof.AuditPath)
        {
            text.Append("audit_path: ").Append(hash.ToBase64()).Append('\n');
        }

        text.Append("tree_head: ").Append(proof.TreeHead.ToBase64()).Append('\n');
        text.Append("tree_head_signature: ").Append(proof.TreeHeadSignature.ToBase64()).Append('\n');
        return text.ToString();
    }

    /// <summary>Writes the proof to <paramref name="path"/> (replacing the file).</summary>
    public static void Save(EvidenceProof proof, string path) => File.WriteAllText(path, Format(proof));

    /// <summary>Reads a proof file's text.</summary>
    /// <exception cref="FormatException">Not a proof file: the message names the line and what is wrong.</exception>
    public static EvidenceProof Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string[] lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        if (lines.Length == 0 || lines[0].Trim() != FirstLine)
        {
            throw new FormatException($"line 1: expected \"{FirstLine}\" (not a relayd proof file)");
        }

        var proof = new EvidenceProof();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 1; i < lines.Length; i++)
        {
            string line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                throw new FormatException($"line {i + 1}: expected \"name: value\"");
            }

            string name = line[..colon], value = line[(colon + 1)..].Trim();
            if (name != "audit_path" && !seen.Add(name))
            {
                throw new FormatException($"line {i + 1}: {name} is given twice");
            }

            try
            {
                switch (name)
                {
                    case "statement": proof.Statement = ByteString.FromBase64(value); break;
                    case "leaf_index": proof.LeafIndex = ulong.Parse(value, NumberStyles.None, CultureInfo.InvariantCulture); break;
                    case "tree_size": proof.TreeSize = ulong.Parse(value, NumberStyles.None, CultureInfo.InvariantCulture); break;
                    case "audit_path": proof.AuditPath.Add(ByteString.FromBase64(value)); break;
                    case "tree_head": proof.TreeHead = ByteString.FromBase64(value); break;
                    case "tree_head_signature": proof.TreeHeadSignature = ByteString.FromBase64(value); break;
                    default: throw new FormatException($"line {i + 1}: unknown field {name}");
                }
            }
            catch (Exception ex) when (ex is FormatException or OverflowException && !ex.Message.StartsWith("line ", StringComparison.Ordinal))
            {
                throw new FormatException($"line {i + 1}: {name}: not {(name is "leaf_index" or "tree_size" ? "a non-negative integer" : "base64")}", ex);
            }
        }

        foreach (string required in (string[])["statement", "leaf_index", "tree_size", "tree_head", "tree_head_signature"])
        {
            if (!seen.Contains(required))
            {
                throw new FormatException($"{required} is missing");
            }
        }

        return proof;
    }
}
