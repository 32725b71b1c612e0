using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Hosting;

/// <summary><c>relayd dev</c> builds its options in code; they pass the same checks as a configuration file.</summary>
public sealed class DevConfigTests
{
    [Fact]
    public async Task Dev_refuses_a_partner_named_twice_in_one_line_before_starting()
    {
        string dir = Directory.CreateTempSubdirectory("relayd-dev-").FullName;
        try
        {
            ExternalProcess.Result result = await ExternalProcess.RunRelaydAsync("dev", "--dir", dir, "--port", "0", "--partner", "alpha", "--partner", "alpha");

            string line = Assert.Single(CliAssert.Refusal(result, expectedExitCode: 64));
            Assert.Equal("relayd: partners[1].id: duplicate partner id 'alpha' (also partners[0])", line);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
