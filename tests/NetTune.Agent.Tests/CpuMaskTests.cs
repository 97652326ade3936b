using NetTune.Agent.Core;
using NetTune.Fixtures.Hosts;

namespace NetTune.Agent.Tests;

public sealed class CpuMaskTests
{
    [Theory]
    [InlineData(2, new[] { 0, 1 }, "3")]
    [InlineData(2, new int[0], "0")]
    [InlineData(32, new[] { 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31 }, "ff00ff00")]
    [InlineData(48, new[] { 0, 47 }, "8000,00000001")]
    [InlineData(256, new[] { 255, 0 }, "80000000,00000000,00000000,00000000,00000000,00000000,00000000,00000001")]
    public void FormatsLikeTheKernel(int cpuIds, int[] cpus, string expected)
    {
        Assert.Equal(expected, CpuMask.Format(cpus, cpuIds));
        Assert.Equal(expected, FixtureHostBuilder.Mask(cpus, cpuIds));
        Assert.Equal(cpus.Order(), CpuMask.Parse(expected));
    }

    [Fact]
    public void RoundTripsEveryHundredAndTwentyEightCpuSocketOf256()
    {
        var node1 = Enumerable.Range(128, 128).ToArray();
        var mask = CpuMask.Format(node1, 256);
        Assert.Equal("ffffffff,ffffffff,ffffffff,ffffffff,00000000,00000000,00000000,00000000", mask);
        Assert.Equal(node1, CpuMask.Parse(mask));
    }

    [Theory]
    [InlineData("xyz")]
    [InlineData("123456789")]
    [InlineData("ff,,ff")]
    public void RefusesText_ThatIsNoMask(string text) => Assert.False(CpuMask.TryParse(text, out _));
}
