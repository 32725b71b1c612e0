namespace Relayd.Tests.Infrastructure;

/// <summary>One PKI per test class: generating keys is cheap but not free.</summary>
public sealed class PkiFixture : IDisposable
{
    public TestPki Pki { get; } = new();

    public void Dispose() => Pki.Dispose();
}
