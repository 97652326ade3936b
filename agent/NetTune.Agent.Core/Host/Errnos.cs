namespace NetTune.Agent.Core.Host;

public static class Errnos
{
    public const int EPERM = 1, ENOENT = 2, EIO = 5, ENODEV = 19, EINVAL = 22, ERANGE = 34, EOPNOTSUPP = 95, ENOTSUP = 95;

    public static string Name(int errno) => errno switch
    {
        1 => "EPERM", 2 => "ENOENT", 5 => "EIO", 12 => "ENOMEM", 13 => "EACCES", 16 => "EBUSY", 19 => "ENODEV",
        22 => "EINVAL", 28 => "ENOSPC", 30 => "EROFS", 34 => "ERANGE", 95 => "EOPNOTSUPP", _ => $"errno {errno}",
    };

    /// <summary>"EIO (Input/output error)": the symbolic name operators grep for plus the C library's text.</summary>
    public static string Describe(int errno) => $"{Name(errno)} ({new System.ComponentModel.Win32Exception(errno).Message})";
}
