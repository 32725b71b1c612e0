using Relayd.Hosting;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Hosting;

/// <summary>The limits for slow, stuck and refused peers: every key reaches <see cref="RelayLimits"/>, bad values are named.</summary>
public sealed class PeerLimitConfigTests : IDisposable
{
    private readonly TestPki _pki = new();

    public void Dispose() => _pki.Dispose();

    [Fact]
    public void The_peer_limits_are_read_from_the_limits_table()
    {
        RelayLimits limits = RelayConfigLoader.Load(_pki.WriteMinimalConfig("""
            [limits]
            max_frame_bytes = 65536
            min_frame_data_rate = 1000
            min_frame_data_rate_grace_ms = 2500
            max_partial_frame_bytes_per_partner = 1048576
            write_timeout_ms = 5000
            refusal_log_interval_ms = 60000
            """)).Limits;

        Assert.Equal(1000, limits.MinFrameDataRate);
        Assert.Equal(TimeSpan.FromMilliseconds(2500), limits.MinFrameDataRateGracePeriod);
        Assert.Equal(1024 * 1024, limits.MaxPartialFrameBytesPerPartner);
        Assert.Equal(1024 * 1024, limits.PartialFrameBytesPerPartner);
        Assert.Equal(TimeSpan.FromSeconds(5), limits.WriteTimeout);
        Assert.Equal(TimeSpan.FromMinutes(1), limits.RefusalLogInterval);
    }

    [Fact]
    public void By_default_a_partner_may_hold_four_largest_frames_in_partial_frames()
    {
        RelayLimits limits = RelayConfigLoader.Load(_pki.WriteMinimalConfig("""
            [limits]
            max_frame_bytes = 65536
            max_partial_frame_bytes_per_partner = 0
            """)).Limits;

        Assert.Null(limits.MaxPartialFrameBytesPerPartner);
        Assert.Equal(4 * 65536, limits.PartialFrameBytesPerPartner);
        Assert.Equal(4096, limits.MinFrameDataRate);
        Assert.Equal(TimeSpan.FromSeconds(30), limits.WriteTimeout);
    }

    [Fact]
    public void Bad_peer_limits_are_reported_with_key_and_line()
    {
        IReadOnlyList<ConfigError> errors = RelayConfigLoader.Check(_pki.WriteMinimalConfig("""
            [limits]
            min_frame_data_rate = 0
            write_timeout_ms = 0
            max_partial_frame_bytes_per_partner = 10
            """));

        Assert.Contains(errors, e => e.Key == "limits.min_frame_data_rate" && e.Line == 2);
        Assert.Contains(errors, e => e.Key == "limits.write_timeout_ms" && e.Line == 3);
        Assert.Contains(errors, e => e.Key == "limits.max_partial_frame_bytes_per_partner" && e.Line == 4);
    }
}
