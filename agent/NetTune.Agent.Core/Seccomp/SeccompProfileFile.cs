using System.Security.Cryptography;
using System.Text;

namespace NetTune.Agent.Core.Seccomp;

/// <summary>
/// NetTune's profile file on the host, as a knob: its value is "absent" or a fingerprint of the content, short enough
/// for the NodeState's status. Installed atomically (temp file, fsync, rename), so the kubelet never reads half a
/// profile; the folder NetTune made for it goes with the file.
/// </summary>
public static class SeccompProfileFile
{
    public const string Absent = "absent";

    public static string Fingerprint(string content) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(content)))[..16];

    /// <summary>The file's value: <see cref="Absent"/>, or the fingerprint of what it holds; null when it cannot be read.</summary>
    public static string? Value(string fullPath)
    {
        try
        {
            return File.Exists(fullPath) ? Fingerprint(File.ReadAllText(fullPath)) : Absent;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Writes the profile; null on success, else the error.</summary>
    public static string? Install(string fullPath, string content)
    {
        var temp = fullPath + ".tmp";
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(fullPath)!);
            using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                file.Write(Encoding.UTF8.GetBytes(content));
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, fullPath, overwrite: true);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(temp); } catch (IOException) { }
            return e.Message;
        }
    }

    /// <summary>Removes the profile and its folder when nothing else is in it; null on success, else the error.</summary>
    public static string? Remove(string fullPath)
    {
        try
        {
            File.Delete(fullPath);
            var folder = Path.GetDirectoryName(fullPath)!;
            if (Directory.Exists(folder) && !Directory.EnumerateFileSystemEntries(folder).Any()) Directory.Delete(folder);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return e.Message;
        }
    }
}
