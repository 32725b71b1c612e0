namespace Relayd.Tests.Infrastructure;

/// <summary>Figures a test states about itself: written to the test's output and to the console (CI logs show both).</summary>
internal static class TestReport
{
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
