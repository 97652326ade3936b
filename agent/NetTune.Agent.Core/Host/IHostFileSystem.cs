namespace NetTune.Agent.Core.Host;

/// <summary>The outcome of one read or write of a host file: the text, or the kernel's errno.</summary>
public readonly record struct HostIoResult(string? Text, int Errno)
{
    public bool Ok => Errno == 0;
    public static HostIoResult Success(string? text = null) => new(text, 0);
    public static HostIoResult Failure(int errno) => new(null, errno);
    public string ErrorText => Errno == 0 ? "" : Errnos.Describe(Errno);
}

/// <summary>
/// Files of the host (sysfs, procfs), by paths relative to the host root. Reads and writes report the kernel's
/// errno instead of throwing, because an EPERM or EIO from sysfs is an answer about the knob, not a crash.
/// </summary>
public interface IHostFileSystem
{
    /// <summary>The absolute folder every relative path is resolved under (/, /host or a fixture tree).</summary>
    string Root { get; }

    /// <summary>Reads the whole file; a trailing newline is kept, so a value can be restored byte for byte.</summary>
    HostIoResult Read(string path);

    /// <summary>Writes <paramref name="value"/> followed by a newline in one write(2), the way echo does.</summary>
    HostIoResult Write(string path, string value);

    bool Exists(string path);

    /// <summary>Entry names (files, folders, links) of a folder; empty when it does not exist.</summary>
    IReadOnlyList<string> List(string path);

    /// <summary>The target of a symlink made absolute within the host root and normalised, or null when it is no link.</summary>
    string? ResolveLink(string path);

    /// <summary>Writes made through this instance; the benchmark reports it.</summary>
    long WriteCount { get; }
}
