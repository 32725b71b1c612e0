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
};

return await root.Parse(args).InvokeAsync();
