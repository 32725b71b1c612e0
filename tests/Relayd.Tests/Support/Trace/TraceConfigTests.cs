using Relayd.Hosting;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Support.Trace;

/// <summary>The <c>[trace]</c> table: every key reaches the options, bad values are named with key and line.</summary>
public sealed class TraceConfigTests : IDisposable
{
    private readonly TestPki _pki = new();

    public void Dispose() => _pki.Dispose();

    [Fact]
    public void The_trace_table_sets_every_key_and_without_it_the_trace_is_on_for_7_days_and_1_GiB()
    {
        RelayOptions options = RelayConfigLoader.Load(_pki.WriteMinimalConfig("""
            [trace]
            enabled = false
            retention_seconds = 3600
            max_bytes = 2097152
            segment_bytes = 65536
            """));
        RelayOptions defaults = RelayConfigLoader.Load(_pki.WriteMinimalConfig(""));

        Assert.False(options.Trace.Enabled);
        Assert.Equal(TimeSpan.FromHours(1), options.Trace.Retention);
        Assert.Equal(2 * 1024 * 1024, options.Trace.MaxBytes);
        Assert.Equal(64 * 1024, options.Trace.SegmentBytes);
        Assert.True(defaults.Trace.Enabled);
        Assert.Equal(TimeSpan.FromDays(7), defaults.Trace.Retention);
        Assert.Equal(1L << 30, defaults.Trace.MaxBytes);
    }

    [Fact]
    public void Bad_trace_values_are_reported_with_key_and_line()
    {
        IReadOnlyList<ConfigError> errors = RelayConfigLoader.Check(_pki.WriteMinimalConfig("""
            [trace]
            retention_seconds = 10
            segment_bytes = 1
            enabled = "yes"
            """));
        IReadOnlyList<ConfigError> tooSmall = RelayConfigLoader.Check(_pki.WriteMinimalConfig("""
            [trace]
            max_bytes = 1048576
            segment_bytes = 1048576
            """));

        Assert.Contains(errors, e => e.Key == "trace.retention_seconds" && e.Line == 2);
        Assert.Contains(errors, e => e.Key == "trace.segment_bytes" && e.Line == 3);
        Assert.Contains(errors, e => e.Key == "trace.enabled" && e.Line == 4);
        Assert.Contains(tooSmall, e => e.Key == "trace.max_bytes" && e.Message.Contains("twice trace.segment_bytes", StringComparison.Ordinal));
    }
}
