namespace Relayd.Tests.Systemd;

/// <summary>
/// Every test against the packaged relay in a real systemd shares one container (booting and installing take
/// seconds); they run one after another, alone, so a loaded machine does not stretch systemd's own timeouts.
/// </summary>
[CollectionDefinition(nameof(SystemdCollection), DisableParallelization = true)]
public sealed class SystemdCollection : ICollectionFixture<SystemdContainer>;
