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
        pki.Add(EvidenceCommands.InitEvidence());
        return pki;
    }

    private static Command Init()
    {
        var dir = new Option<DirectoryInfo>("--dir") { Description = "Directory for the PKI files", Required = true };
        var command = new Command("init", "Create the CA and the relay's server certificate in DIR (kept when present)") { dir };
        command.SetAction(parse =>
        {
            var pki = new DevPki(parse.GetValue(dir)!.FullName);
            bool created;
            try
            {
                created = pki.Init();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException)
            {
                Console.Error.WriteLine("relayd: " + ex.Message);
                return ExitCodes.CannotCreate;
            }

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
            if (DevPki.PartnerIdProblem(partner) is { } problem)
            {
                Console.Error.WriteLine("relayd: " + problem);
                return ExitCodes.Usage;
            }

            try
            {
                pki.IssuePartner(partner);
            }
            catch (InvalidOperationException ex)
            {
                Console.Error.WriteLine("relayd: " + ex.Message);
                return ExitCodes.Usage;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine("relayd: " + ex.Message);
                return ExitCodes.CannotCreate;
            }

            Console.WriteLine($"partner {partner}: certificate {pki.PartnerCertPath(partner)}  key {pki.PartnerKeyPath(partner)}");
            return ExitCodes.Ok;
        });
        return command;
    }
}
