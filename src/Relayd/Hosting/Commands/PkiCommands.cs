using System.CommandLine;
using Relayd.Security;

namespace Relayd.Hosting.Commands;

/// <summary><c>relayd pki init</c> and <c>relayd pki issue-partner</c>: a dev/test PKI, never for production keys.</summary>
internal static class PkiCommands
{
    public static Command Create()
    {
        var pki = new Command("pki", "Create a development PKI: partner CA, relay server certificate, partner certificates");
        pki.Add(Init());
        pki.Add(IssuePartner());
        return pki;
    }

    private static Command Init()
    {
        var dir = new Option<DirectoryInfo>("--dir") { Description = "Directory for the PKI files", Required = true };
        var command = new Command("init", "Create the CA and the relay's server certificate in DIR (kept when present)") { dir };
        command.SetAction(parse =>
        {
            var pki = new DevPki(parse.GetValue(dir)!.FullName);
            bool created = pki.Init();
            Console.WriteLine(created ? "created" : "already present");
            Console.WriteLine($"  CA certificate:     {pki.CaCertPath}");
            Console.WriteLine($"  server certificate: {pki.ServerCertPath}");
            Console.WriteLine($"  server key:         {pki.ServerKeyPath}");
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command IssuePartner()
    {
        var dir = new Option<DirectoryInfo>("--dir") { Description = "Directory created by 'pki init'", Required = true };
        var id = new Option<string>("--id") { Description = "Partner id, written as SAN URI relayd://partner/<id>", Required = true };
        var command = new Command("issue-partner", "Issue a client certificate for a partner") { dir, id };
        command.SetAction(parse =>
        {
            var pki = new DevPki(parse.GetValue(dir)!.FullName);
            string partner = parse.GetValue(id)!;
            try
            {
                pki.IssuePartner(partner);
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
            {
                Console.Error.WriteLine(ex.Message);
                return ExitCodes.Usage;
            }

            Console.WriteLine($"partner {partner}: certificate {pki.PartnerCertPath(partner)}  key {pki.PartnerKeyPath(partner)}");
            return ExitCodes.Ok;
        });
        return command;
    }
}
