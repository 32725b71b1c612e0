using System.CommandLine;
using Microsoft.Extensions.Logging;
using Relayd.Wal;

namespace Relayd.Hosting.Commands;

/// <summary><c>relayd wal verify</c> (read-only report) and <c>relayd wal repair</c> (explicit, logged truncation).</summary>
internal static class WalCommands
{
    public static Command Create()
    {
        var wal = new Command("wal", "Inspect or repair a write-ahead log directory");
        wal.Add(Verify());
        wal.Add(Repair());
        return wal;
    }

    private static Command Verify()
    {
        var dir = new Option<DirectoryInfo>("--dir") { Description = "Write-ahead log directory", Required = true };
        var command = new Command("verify", "Check every segment and record; report each problem with its segment and offset; change nothing") { dir };
        command.SetAction(parse =>
        {
            string directory = parse.GetValue(dir)!.FullName;
            WalVerifyReport report;
            try
            {
                report = WriteAheadLog.Verify(MustExist(directory));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return Refuse(directory, ex);
            }

            Console.WriteLine($"{report.Directory}: {report.Segments} segment(s), {report.Records:N0} valid record(s)");
            foreach (WalProblem problem in report.Problems)
            {
                Console.WriteLine($"  {problem.Kind}: {problem.SegmentFile} at offset {problem.Offset}: {problem.Description}");
            }

            Console.WriteLine(report.Problems.Count == 0 ? "OK"
                : report.CanOpen ? "opens: only a torn tail, which relayd truncates at start"
                : "CORRUPT: relayd will refuse to start; see 'relayd wal repair --help'");
            return report.CanOpen ? ExitCodes.Ok : ExitCodes.Failed;
        });
        return command;
    }

    private static Command Repair()
    {
        var dir = new Option<DirectoryInfo>("--dir") { Description = "Write-ahead log directory (relayd must be stopped)", Required = true };
        var command = new Command("repair", "Cut the log at its first corrupt record; everything after it moves to quarantine/, never deleted") { dir };
        command.SetAction(parse =>
        {
            string directory = parse.GetValue(dir)!.FullName;
            using ILoggerFactory logging = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Information));
            WalRepairResult result;
            try
            {
                result = WriteAheadLog.Repair(MustExist(directory), logging.CreateLogger("relayd.wal"));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return Refuse(directory, ex);
            }

            if (!result.Repaired)
            {
                Console.WriteLine("nothing to repair");
                return ExitCodes.Ok;
            }

            Console.WriteLine($"cut at {result.TruncatedAt?.SegmentFile} offset {result.TruncatedAt?.Offset}; {result.BytesQuarantined:N0} bytes moved to {result.QuarantineDirectory}");
            foreach (WalQuarantinedFile moved in result.Quarantined)
            {
                Console.WriteLine($"  {moved.Source} from offset {moved.SourceOffset} ({moved.Bytes:N0} bytes) -> {moved.Destination}");
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    // Checked here rather than left to the log: repair would create wal.lock in a directory that is not there.
    private static string MustExist(string directory) =>
        Directory.Exists(directory) ? directory : throw new DirectoryNotFoundException(directory);

    private static int Refuse(string directory, Exception ex)
    {
        if (ex is DirectoryNotFoundException && !Directory.Exists(directory))
        {
            Console.Error.WriteLine($"relayd: {directory}: no such directory (relayd creates its write-ahead log there when it first starts)");
            return ExitCodes.NoInput;
        }

        Console.Error.WriteLine("relayd: " + ex.Message); // e.g. "the WAL in DIR is in use by another process"
        return ExitCodes.StorageFailed;
    }
}
