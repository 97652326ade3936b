using Xunit;

namespace NetTune.DataPlane.Tests;

/// <summary>The pure decisions behind the slow-reader and forwarded-header defences.</summary>
public class PeerPolicyTests
{
    private const long Rate = 240, PeriodMs = 5000;

    [Fact]
    public void ARateWindowJudgesEachPeriodOnItsOwn()
    {
        var w = new ResponseRateWindow();
        Assert.False(w.Below(1_000_000, 0, Rate, PeriodMs)); // opens; a burst into a big receive buffer
        Assert.False(w.Below(1_000_000, 4000, Rate, PeriodMs)); // within the grace
        // A whole period with nothing taken: below, although the average since the start is far above.
        Assert.True(w.Below(1_000_000, 5000, Rate, PeriodMs));
    }

    [Fact]
    public void AReaderAtTheRateGoesOnAndTimeOnTheUpstreamIsNotItsOwn()
    {
        var w = new ResponseRateWindow();
        w.Below(0, 0, Rate, PeriodMs);
        Assert.False(w.Below(1200, 5000, Rate, PeriodMs)); // 240 B/s exactly: a new period starts
        w.Pause(60_000); // 55 s waiting on the upstream
        Assert.False(w.Below(1300, 61_000, Rate, PeriodMs)); // 1 s of client time counted since
        Assert.True(w.Below(1300, 65_000, Rate, PeriodMs)); // 5 s of it, 100 bytes: below
        w.Reset();
        Assert.False(w.Below(1300, 100_000, Rate, PeriodMs)); // the next response starts afresh
    }

    [Theory]
    [InlineData("10.0.0.0/8", "10.200.3.4", true)]
    [InlineData("10.0.0.0/8", "11.0.0.1", false)]
    [InlineData("192.168.1.7", "192.168.1.7", true)]
    [InlineData("192.168.1.7", "192.168.1.8", false)]
    [InlineData("172.16.0.0/12", "172.31.255.255", true)]
    [InlineData("172.16.0.0/12", "172.32.0.0", false)]
    [InlineData("0.0.0.0/0", "8.8.8.8", true)]
    [InlineData("fd00::/8", "fd12::1", true)]
    [InlineData("fd00::/8", "10.0.0.1", false)]
    [InlineData("", "10.0.0.1", false)]
    public void TrustedProxiesMatchByPrefix(string list, string peer, bool trusted) =>
        Assert.Equal(trusted, TrustedProxies.Parse(list).Contains(System.Net.IPAddress.Parse(peer).GetAddressBytes()));

    [Theory]
    [InlineData("10.0.0.0/33")]
    [InlineData("10.0.0/8")]
    [InlineData("example.com")]
    [InlineData("10.0.0.0/-1")]
    public void BadTrustedProxiesAreRefusedByName(string list) =>
        Assert.Contains(list, Assert.Throws<OptionsException>(() => TrustedProxies.Parse(list)).Message);
}
