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
    return await root.Parse(args).InvokeAsync(invocation);
}
catch (Exception ex)
{
    // No stack trace for an operator; the type and message are enough to report or look up.
    await Console.Error.WriteLineAsync($"relayd: internal error ({ex.GetType().Name}): {ex.Message}");
    return ExitCodes.InternalError;
}
