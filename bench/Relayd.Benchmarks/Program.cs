using BenchmarkDotNet.Running;

BenchmarkSwitcher.FromAssembly(typeof(Relayd.Benchmarks.HotPathBenchmarks).Assembly).Run(args);
