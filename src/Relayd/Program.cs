using System.CommandLine;
using Relayd.Hosting.Commands;

var root = new RootCommand("relayd: the exchange between messaging providers (DMA interoperability relay)")
{
    ServeCommands.Run(),
    ServeCommands.CheckConfig(),
    ServeCommands.Dev(),
    DemoCommand.Create(),
    PkiCommands.Create(),
    WalCommands.Create(),
    CtlCommands.Create(),
    EvidenceCommands.Create(),
};

var invocation = new InvocationConfiguration
{
    // run and dev stop through the generic host, which gives the drain its limits.shutdown_timeout_ms. System.CommandLine's
    // own SIGTERM handler would end the process with 143 two seconds after the signal, whatever the drain still had to do.
    ProcessTerminationTimeout = null,
    // Every command reports what it expects to go wrong in one line; the catch below is for the rest.
    EnableDefaultExceptionHandler = false,
};

try
{
    ParseResult parsed = root.Parse(args);
    int exit = await parsed.InvokeAsync(invocation);
    // System.CommandLine prints the errors and the help and returns 1; a command line that does not parse is EX_USAGE,
    // as every command's own usage checks are, so a script can tell it from a command that ran and failed.
    return parsed.Errors.Count > 0 ? ExitCodes.Usage : exit;
}
catch (Exception ex)
{
    // No stack trace for an operator; the type and message are enough to report or look up.
    await Console.Error.WriteLineAsync($"relayd: internal error ({ex.GetType().Name}): {ex.Message}");
    return ExitCodes.InternalError;
}
