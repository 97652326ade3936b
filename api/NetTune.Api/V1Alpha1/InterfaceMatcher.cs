using System.Text.RegularExpressions;

namespace NetTune.Api.V1Alpha1;

/// <summary>
/// An interface matches when its name matches one of the globs or its driver is one of the drivers. Shared: the agent
/// tunes the interfaces it matches, the operator places data-plane pods on their NUMA nodes.
/// </summary>
public static class InterfaceMatcher
{
    public static bool Matches(InterfaceSelector? selector, string name, string? driver)
    {
        if (selector is null) return false;
        if (selector.Names?.Any(g => GlobToRegex(g).IsMatch(name)) == true) return true;
        return driver is not null && selector.Drivers?.Contains(driver, StringComparer.Ordinal) == true;
    }

    public static Regex GlobToRegex(string glob)
    {
        var pattern = "^";
        for (var i = 0; i < glob.Length; i++)
        {
            var c = glob[i];
            if (c == '*') pattern += ".*";
            else if (c == '?') pattern += ".";
            else if (c == '[')
            {
                var end = glob.IndexOf(']', i + 1);
                if (end < 0) { pattern += @"\["; continue; }
                var body = glob[(i + 1)..end];
                if (body.StartsWith('!')) body = "^" + body[1..];
                pattern += "[" + body.Replace(@"\", @"\\") + "]";
                i = end;
            }
            else pattern += Regex.Escape(c.ToString());
        }
        return new Regex(pattern + "$", RegexOptions.CultureInvariant);
    }
}
