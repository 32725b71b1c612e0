namespace Relayd.Tests.Infrastructure;

/// <summary>Figures a test states about itself: written to the test's output and to the console (CI logs show both).</summary>
internal static class TestReport
{
    /// <summary>A positive integer from the environment (a test's size switch), else <paramref name="fallback"/>.</summary>
    public static int EnvironmentInt(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int value) && value > 0 ? value : fallback;

    public static void WriteLine(string line)
    {
        Console.WriteLine(line);
        try
        {
            TestContext.Current.TestOutputHelper?.WriteLine(line);
        }
        catch (InvalidOperationException)
        {
            // No test is running.
        }
    }
}
