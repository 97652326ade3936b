using System.Text.RegularExpressions;
using NetTune.Api.V1Alpha1;

namespace NetTune.Api.Tests;

public class CpuListTests
{
    [Theory]
    [InlineData("0", new[] { 0 })]
    [InlineData("0-3", new[] { 0, 1, 2, 3 })]
    [InlineData("0-3,8,10-11", new[] { 0, 1, 2, 3, 8, 10, 11 })]
    [InlineData("8,2,5-6", new[] { 2, 5, 6, 8 })]
    [InlineData("1,1,0-2", new[] { 0, 1, 2 })]
    [InlineData("4-4", new[] { 4 })]
    [InlineData(" 1 , 3 ", new[] { 1, 3 })]
    [InlineData("0-1,\n", new[] { 0, 1 })]
    [InlineData("8191", new[] { 8191 })]
    [InlineData("", new int[0])]
    [InlineData("  ", new int[0])]
    [InlineData(null, new int[0])]
    public void ParseGivesSortedDistinctCpus(string? text, int[] expected) => Assert.Equal(expected, CpuList.Parse(text));

    [Theory]
    [InlineData("3-1", "runs backwards")]
    [InlineData("a", "'a' is not a CPU id")]
    [InlineData("1-", "'' is not a CPU id")]
    [InlineData("-1", "'' is not a CPU id")]
    [InlineData("+1", "'+1' is not a CPU id")]
    [InlineData("1-2-3", "'2-3' is not a CPU id")]
    [InlineData("8192", "'8192' is not a CPU id")]
    [InlineData("0x3", "'0x3' is not a CPU id")]
    public void ParseRefusesBadInputNamingIt(string text, string fragment)
    {
        var error = Assert.Throws<FormatException>(() => CpuList.Parse(text));
        Assert.Contains(fragment, error.Message);
        Assert.Contains($"'{text}'", error.Message);
        Assert.False(CpuList.TryParse(text, out var cpus));
        Assert.Empty(cpus);
    }

    [Fact]
    public void TryParseReturnsTheCpus()
    {
        Assert.True(CpuList.TryParse("2-3", out var cpus));
        Assert.Equal([2, 3], cpus);
    }

    [Theory]
    [InlineData(new int[0], "")]
    [InlineData(new[] { 5 }, "5")]
    [InlineData(new[] { 0, 1, 2, 3 }, "0-3")]
    [InlineData(new[] { 3, 1, 2, 5, 7, 8 }, "1-3,5,7-8")]
    [InlineData(new[] { 0, 2, 4 }, "0,2,4")]
    [InlineData(new[] { 1, 1, 2, 2 }, "1-2")]
    public void FormatWritesCompactRanges(int[] cpus, string expected) => Assert.Equal(expected, CpuList.Format(cpus));

    [Theory]
    [InlineData("0-3,8,10-11")]
    [InlineData("0,2,4-7,64-127")]
    [InlineData("5")]
    public void FormatOfParseIsTheCanonicalText(string text) => Assert.Equal(text, CpuList.Format(CpuList.Parse(text)));

    [Theory]
    [InlineData("", true)]
    [InlineData("0", true)]
    [InlineData("0-1,8", true)]
    [InlineData("0-3,8,10-11", true)]
    [InlineData(" 1", false)]
    [InlineData("1,", false)]
    [InlineData("a", false)]
    [InlineData("12345", false)]
    public void PatternAcceptsTheCanonicalForm(string text, bool matches) => Assert.Equal(matches, Regex.IsMatch(text, CpuList.Pattern));

    [Theory]
    [InlineData("")]
    [InlineData("0")]
    [InlineData("0-1,8")]
    [InlineData("0-3,8,10-11")]
    public void WhatThePatternAndParseBothAcceptFormatsBackToItself(string text)
    {
        Assert.Matches(CpuList.Pattern, text);
        Assert.Equal(text, CpuList.Format(CpuList.Parse(text)));
    }
}
