namespace Relayd.Tests.Infrastructure;

/// <summary>Tests that measure process memory run alone.</summary>
[CollectionDefinition(nameof(MemorySensitiveCollection), DisableParallelization = true)]
public sealed class MemorySensitiveCollection;
