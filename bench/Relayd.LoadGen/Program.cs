using System.CommandLine;
using Relayd.LoadGen;

var relay = new Option<string>("--relay") { Description = "Relay address host:port (e.g. a `relayd dev` relay)", Required = true };
var pki = new Option<DirectoryInfo>("--pki") { Description = "Dev PKI directory (ca.crt, partners/<id>.crt|.key)", Required = true };
var sender = new Option<string>("--sender") { Description = "Sending partner id", DefaultValueFactory = _ => "alpha" };
var recipient = new Option<string>("--recipient") { Description = "Receiving partner id", DefaultValueFactory = _ => "beta" };
var count = new Option<int>("--count") { Description = "Envelopes to send", DefaultValueFactory = _ => 1_000_000 };
var size = new Option<int>("--size") { Description = "Ciphertext bytes per envelope", DefaultValueFactory = _ => 1024 };
var window = new Option<int>("--window") { Description = "Unacknowledged envelopes in flight (closed loop)", DefaultValueFactory = _ => 4096 };
var users = new Option<int>("--users") { Description = "Distinct recipient users (conversations)", DefaultValueFactory = _ => 64 };
var root = new RootCommand("relayd load generator: 1 sender, 1 recipient, closed loop; prints throughput and ack latency")
{
    relay, pki, sender, recipient, count, size, window, users,
};
root.SetAction(async (parse, cancellationToken) =>
{
    var settings = new LoadSettings(
        parse.GetValue(relay)!, parse.GetValue(pki)!.FullName, parse.GetValue(sender)!, parse.GetValue(recipient)!,
        parse.GetValue(count), parse.GetValue(size), parse.GetValue(window), parse.GetValue(users));
    LoadResult result = await new ClosedLoopRun(settings).RunAsync(cancellationToken);
    Console.WriteLine(result.Format(settings));
    return 0;
});
return await root.Parse(args).InvokeAsync();
