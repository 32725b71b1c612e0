using Relayd.Fuzz.Oracles;

namespace Relayd.Fuzz;

/// <summary>Runs saved inputs (afl's crashes, regressions) through an oracle and prints, per input that breaks it, why and which file.</summary>
internal static class Replay
{
    /// <returns>0 when every file passes, 1 otherwise.</returns>
    public static int Files(string target, Action<byte[]> check, IEnumerable<string> files)
    {
        int broken = 0;
        foreach (string file in files)
        {
            try
            {
                check(File.ReadAllBytes(file));
            }
            catch (OracleViolationException ex)
            {
                broken++;
                Console.WriteLine($"{ex.Message}  <- {file}");
            }
            catch (Exception ex)
            {
                broken++;
                // The innermost frame of relayd's code says where an unexpected exception came from.
                string? where = ex.StackTrace?.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Contains("Relayd.", StringComparison.Ordinal) && !l.Contains("Relayd.Fuzz.", StringComparison.Ordinal));
                Console.WriteLine($"{ex.GetType().Name}: {ex.Message}{(where is null ? "" : $" ({where})")}  <- {file}");
            }
        }

        return broken == 0 ? 0 : 1;
    }
}
