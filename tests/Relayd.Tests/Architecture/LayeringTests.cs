using System.Text.RegularExpressions;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Architecture;

/// <summary>
/// The folders of src/Relayd are its layers (docs/architecture.md): none may use a folder that uses it back, and the
/// write-ahead log's positions stay inside the WAL-backed store. Read from the sources: a file "uses" a folder when it
/// names a top-level type declared only there (comments and string literals stripped). A heuristic, but one that
/// errs towards seeing too many uses, never too few, for types with unique names.
/// </summary>
public sealed partial class LayeringTests
{
    private static readonly string SourceRoot = Path.Combine(ExternalProcess.RepositoryRoot, "src", "Relayd");

    [Fact]
    public void The_source_tree_the_test_reads_has_the_layers_it_expects()
    {
        Dictionary<string, List<SourceFile>> folders = ReadFolders();
        foreach (string folder in (string[])["Transport", "Routing", "Storage", "Wal", "Delivery", "Media", "Admission", "Diagnostics", "Hosting"])
        {
            Assert.True(folders.ContainsKey(folder), $"src/Relayd/{folder} not found");
        }

        Dictionary<string, HashSet<string>> uses = Uses(folders);
        Assert.Contains("Wal", uses["Storage"]); // the detector sees a use that is known to exist
    }

    [Fact]
    public void No_folder_uses_a_folder_that_uses_it_back()
    {
        Dictionary<string, HashSet<string>> uses = Uses(ReadFolders(), out Dictionary<(string, string), SortedSet<string>> why);
        var cycles = new List<string>();
        foreach ((string folder, HashSet<string> targets) in uses)
        {
            foreach (string target in targets)
            {
                if (string.CompareOrdinal(folder, target) < 0 && uses.TryGetValue(target, out HashSet<string>? back) && back.Contains(folder))
                {
                    cycles.Add($"{folder} <-> {target}: {folder} -> {target} by {string.Join(", ", why[(folder, target)].Take(6))}; {target} -> {folder} by {string.Join(", ", why[(target, folder)].Take(6))}");
                }
            }
        }

        Assert.True(cycles.Count == 0, "folders that use each other:\n" + string.Join("\n", cycles));
    }

    [Fact]
    public void Nothing_outside_the_WAL_store_mentions_a_WAL_position()
    {
        string[] allowed = [Path.Combine(SourceRoot, "Wal"), Path.Combine(SourceRoot, "Storage", "WalStore")];
        List<string> offenders = Directory.EnumerateFiles(SourceRoot, "*.cs", SearchOption.AllDirectories)
            .Where(path => !IsBuildOutput(path) && !allowed.Any(root => path.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal)))
            .Where(path => Regex.IsMatch(StripCommentsAndStrings(File.ReadAllText(path)), @"\bWalPosition\b"))
            .Select(path => Path.GetRelativePath(SourceRoot, path))
            .ToList();
        Assert.True(offenders.Count == 0, "WalPosition outside the WAL store: " + string.Join(", ", offenders));
    }

    private static Dictionary<string, HashSet<string>> Uses(Dictionary<string, List<SourceFile>> folders) => Uses(folders, out _);

    private static Dictionary<string, HashSet<string>> Uses(Dictionary<string, List<SourceFile>> folders, out Dictionary<(string, string), SortedSet<string>> why)
    {
        var declaredIn = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach ((string folder, List<SourceFile> files) in folders)
        {
            foreach (SourceFile file in files)
            {
                foreach (Match m in TopLevelType().Matches(file.Text))
                {
                    string name = m.Groups["name"].Value;
                    if (!declaredIn.TryGetValue(name, out HashSet<string>? set))
                    {
                        declaredIn[name] = set = [];
                    }

                    set.Add(folder);
                }
            }
        }

        why = [];
        var uses = folders.Keys.ToDictionary(folder => folder, _ => new HashSet<string>(StringComparer.Ordinal));
        foreach ((string folder, List<SourceFile> files) in folders)
        {
            foreach (SourceFile file in files)
            {
                foreach (string identifier in TypeUses(file.Text, folders.Keys))
                {
                    if (declaredIn.TryGetValue(identifier, out HashSet<string>? owners) && owners.Count == 1 && owners.First() is var owner && owner != folder)
                    {
                        uses[folder].Add(owner);
                        if (!why.TryGetValue((folder, owner), out SortedSet<string>? reasons))
                        {
                            why[(folder, owner)] = reasons = new SortedSet<string>(StringComparer.Ordinal);
                        }

                        reasons.Add($"{file.Name}:{identifier}");
                    }
                }
            }
        }

        return uses;
    }

    /// <summary>
    /// The capitalised names a file uses as types: not member names it declares (the name before <c>=</c>, <c>;</c>,
    /// <c>{</c>, <c>(</c> or <c>=&gt;</c> on a declaration line), and not members it reaches with a dot, unless the
    /// dot follows a folder's namespace (<c>Delivery.HeldReceipts</c>).
    /// </summary>
    private static HashSet<string> TypeUses(string text, IEnumerable<string> folderNames)
    {
        var namespaces = new HashSet<string>(folderNames, StringComparer.Ordinal);
        string withoutMemberNames = MemberDeclaration().Replace(text, m => m.Groups["head"].Value + " " + m.Groups["tail"].Value);
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (Match m in Identifier().Matches(withoutMemberNames))
        {
            int before = m.Index - 1;
            while (before >= 0 && char.IsWhiteSpace(withoutMemberNames[before]))
            {
                before--;
            }

            if (before < 0 || withoutMemberNames[before] != '.')
            {
                names.Add(m.Value);
                continue;
            }

            int qualifierEnd = before;
            while (qualifierEnd > 0 && char.IsWhiteSpace(withoutMemberNames[qualifierEnd - 1]))
            {
                qualifierEnd--;
            }

            int qualifierStart = qualifierEnd;
            while (qualifierStart > 0 && (char.IsLetterOrDigit(withoutMemberNames[qualifierStart - 1]) || withoutMemberNames[qualifierStart - 1] == '_'))
            {
                qualifierStart--;
            }

            if (namespaces.Contains(withoutMemberNames[qualifierStart..qualifierEnd]))
            {
                names.Add(m.Value);
            }
        }

        return names;
    }

    /// <summary>
    /// Each folder under src/Relayd. Files at the root count as the folder "." (the options), except the entry point
    /// and the composition root (<c>Relay</c>, its partial files included), which sit above everything.
    /// </summary>
    private static Dictionary<string, List<SourceFile>> ReadFolders()
    {
        var folders = new Dictionary<string, List<SourceFile>>(StringComparer.Ordinal);
        foreach (string path in Directory.EnumerateFiles(SourceRoot, "*.cs", SearchOption.AllDirectories).Where(p => !IsBuildOutput(p)))
        {
            string relative = Path.GetRelativePath(SourceRoot, path);
            int slash = relative.IndexOf(Path.DirectorySeparatorChar, StringComparison.Ordinal);
            string folder = slash >= 0 ? relative[..slash] : relative switch
            {
                "Program.cs" => "(entry point)",
                "Relay.cs" => "(composition root)",
                _ when relative.StartsWith("Relay.", StringComparison.Ordinal) => "(composition root)", // its partial files (Relay.Evidence.cs)
                _ => ".",
            };
            if (!folders.TryGetValue(folder, out List<SourceFile>? files))
            {
                folders[folder] = files = [];
            }

            files.Add(new SourceFile(Path.GetFileName(path), StripCommentsAndStrings(File.ReadAllText(path))));
        }

        return folders;
    }

    private static bool IsBuildOutput(string path) =>
        path.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
        || path.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal);

    private static string StripCommentsAndStrings(string text) => CommentOrString().Replace(text, " ");

    private sealed record SourceFile(string Name, string Text);

    // Declarations at column 0 are top level under file-scoped namespaces (the only kind this code base uses).
    [GeneratedRegex(@"^(?:[a-z]+ )*(?:class|struct|interface|enum|record)\s+(?:struct\s+|class\s+)?(?<name>[A-Z]\w*)", RegexOptions.Multiline)]
    private static partial Regex TopLevelType();

    [GeneratedRegex(@"(?<!\w)[A-Z]\w*\b")]
    private static partial Regex Identifier();

    [GeneratedRegex(@"^(?<head>[ \t]*(?:public|internal|private|protected)\b[^=;{(\n]*?)\b[A-Z]\w*(?<tail>\s*(?:=>|=|;|\{|\())", RegexOptions.Multiline)]
    private static partial Regex MemberDeclaration();

    [GeneratedRegex(@"//[^\n]*|/\*.*?\*/|@""(?:""""|[^""])*""|""(?:\\.|[^""\\\n])*""|'(?:\\.|[^'\\\n])'", RegexOptions.Singleline)]
    private static partial Regex CommentOrString();
}
