using Relayd.Transport;

namespace Relayd.Tests.Transport;

/// <summary>The per-partner cap on bytes held in partial frames, shared by the partner's connections.</summary>
public sealed class PartialFrameWatchTests
{
    private const long KiB = 1024;

    [Fact]
    public void The_connection_refused_over_the_cap_frees_its_bytes_at_once_so_the_partners_other_connection_can_go_on()
    {
        var limits = new RelayLimits { MaxPartialFrameBytesPerPartner = 1536 * KiB };
        var budget = new PartialFrameBudget();
        var first = new PartialFrameWatch(limits, budget, "alpha");
        var second = new PartialFrameWatch(limits, budget, "alpha");

        Assert.Null(first.Observe(800 * KiB, newFrame: false, nowMs: 1));
        Assert.Null(second.Observe(700 * KiB, newFrame: false, nowMs: 1));
        Assert.NotNull(first.Observe(850 * KiB, newFrame: false, nowMs: 2)); // 1,550 KiB: over the cap

        // Before the fix, first's 800 KiB stayed charged until its session was torn down, and this was refused too.
        Assert.Null(second.Observe(750 * KiB, newFrame: false, nowMs: 2));
        Assert.Equal(750 * KiB, budget.Held);
    }

    [Fact]
    public void A_refused_hold_never_shows_in_the_partners_total()
    {
        var budget = new PartialFrameBudget();

        Assert.True(budget.TryHold(1000, cap: 1500, out _));
        Assert.False(budget.TryHold(600, cap: 1500, out long refusedTotal));
        Assert.Equal(1600, refusedTotal);
        Assert.Equal(1000, budget.Held);
        Assert.True(budget.TryHold(500, cap: 1500, out _));
    }
}
