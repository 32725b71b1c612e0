using Relayd.Fuzz;
using SharpFuzz;

// relayd's fuzzing harness, run by fuzz/run.sh (see fuzz/README.md):
//   Relayd.Fuzz fuzz TARGET            under afl-fuzz: SharpFuzz's fork server loop, one input per run on stdin
//   Relayd.Fuzz replay TARGET FILE...  runs files through the target's oracle and says which ones break it
//   Relayd.Fuzz seeds DIR              writes the binary seed corpus (DIR/<target>/...) with Google.Protobuf
switch (args)
{
    case ["fuzz", var name] when FuzzTargets.All.TryGetValue(name, out Action<byte[]>? check):
        // An exception escaping the action is what SharpFuzz reports to afl-fuzz as a crash.
        Fuzzer.Run(stream => check(ReadAll(stream)));
        return 0;
    case ["replay", var name, .. var files] when FuzzTargets.All.TryGetValue(name, out Action<byte[]>? check):
        return Replay.Files(name, check, files);
    case ["seeds", var directory]:
        SeedCorpus.Write(directory);
        return 0;
    default:
        Console.Error.WriteLine($"usage: Relayd.Fuzz fuzz|replay TARGET [FILE...] | seeds DIR   (targets: {string.Join(", ", FuzzTargets.All.Keys)})");
        return 2;
}

static byte[] ReadAll(Stream stream)
{
    using var copy = new MemoryStream();
    stream.CopyTo(copy);
    return copy.ToArray();
}
