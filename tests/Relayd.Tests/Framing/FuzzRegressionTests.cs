using Relayd.Fuzz;

namespace Relayd.Tests.Framing;

/// <summary>
/// What fuzzing found stays found: every input in fuzz/regressions/&lt;target&gt;/ (and every seed in fuzz/corpus/) goes
/// through the fuzz harness's own oracle for its target (fuzz/Relayd.Fuzz/Oracles, linked into this project), which
/// throws on an unexpected exception or a disagreement with Google.Protobuf or the reference decoder.
/// </summary>
public sealed class FuzzRegressionTests
{
    /// <summary>
    /// Inputs that still break today's readers, run only on request (<c>-explicit on</c>) until their fix is merged;
    /// then delete the entry so the input runs with every test run.
    /// </summary>
    private static readonly Dictionary<string, string> AwaitingFix = new(StringComparer.Ordinal)
    {
    };

    public static IEnumerable<TheoryDataRow<string, string>> Regressions() => Inputs("regressions");

    public static IEnumerable<TheoryDataRow<string, string>> Seeds() => Inputs("corpus");

    [Theory]
    [MemberData(nameof(Regressions))]
    public void An_input_that_broke_a_reader_once_passes_its_fuzz_oracle(string target, string file) =>
        FuzzTargets.All[target](File.ReadAllBytes(PathOf("regressions", target, file)));

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Every_seed_of_the_fuzz_corpus_passes_its_fuzz_oracle(string target, string file) =>
        FuzzTargets.All[target](File.ReadAllBytes(PathOf("corpus", target, file)));

    /// <summary>fuzz/&lt;folder&gt;/&lt;target&gt;/&lt;file&gt;, copied next to the tests by the project file.</summary>
    private static string PathOf(string folder, string target, string file) => Path.Combine(AppContext.BaseDirectory, "fuzz", folder, target, file);

    private static IEnumerable<TheoryDataRow<string, string>> Inputs(string folder)
    {
        foreach (string target in FuzzTargets.All.Keys)
        {
            string directory = PathOf(folder, target, "");
            if (!Directory.Exists(directory))
            {
                continue;
            }

            foreach (string file in Directory.EnumerateFiles(directory).Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal))
            {
                yield return new TheoryDataRow<string, string>(target, file)
                {
                    Explicit = folder == "regressions" && AwaitingFix.ContainsKey($"{target}/{file}"),
                };
            }
        }
    }
}
