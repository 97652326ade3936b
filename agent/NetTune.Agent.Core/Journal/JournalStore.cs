using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using static Tmds.Linux.LibC;

namespace NetTune.Agent.Core.Journal;

/// <summary>A journal file that failed its checks; the agent reports it and changes nothing rather than guess.</summary>
public sealed class JournalCorruptException(string path, string reason) : Exception($"journal {path} is corrupt: {reason}; " +
    "the agent will neither apply nor revert until an operator restores or removes it")
{
    public string JournalPath { get; } = path;
    public string Reason { get; } = reason;
}

/// <summary>
/// The journal on the host's disk: a header line with a SHA-256 of the body, then the body as JSON. Saved atomically
/// (write a temp file, fsync, rename over the journal, fsync the folder), so after a crash or power loss the journal
/// is either the old or the new one, never a mix; a checksum mismatch means damage, reported as such.
/// The header line stays the same across body formats (<see cref="TuningJournal.FormatVersion"/>): a body of an
/// older format is migrated when read, one of a newer format is read as far as it is understood, so an agent
/// upgrade or downgrade never takes the journal for damage. Each save first keeps the journal it replaces, when it
/// is good, as <see cref="PreviousFileName"/>: the last good copy of the previous format after an upgrade.
/// </summary>
public sealed class JournalStore
{
    public const string FileName = "journal.json";
    public const string PreviousFileName = "journal.previous.json";
    private const string Magic = "nettune-journal v1 sha256=";

    private readonly Action<string>? _faultPoint;

    /// <param name="faultPoint">Called at the named steps of a save (after-temp-write, after-rename); tests throw there to simulate a crash.</param>
    public JournalStore(string directory, Action<string>? faultPoint = null)
    {
        Directory = Path.GetFullPath(directory);
        _faultPoint = faultPoint;
    }

    public string Directory { get; }
    public string FilePath => Path.Join(Directory, FileName);
    public string PreviousPath => Path.Join(Directory, PreviousFileName);
    private string TempPath => FilePath + ".tmp";

    /// <summary>The journal, or <see cref="TuningJournal.Empty"/> when there is none. Throws <see cref="JournalCorruptException"/>.</summary>
    public TuningJournal Load()
    {
        // A temp file is a save that never reached its rename: the journal it was to replace is still the truth.
        if (!File.Exists(FilePath)) return TuningJournal.Empty;
        var bytes = File.ReadAllBytes(FilePath);
        try
        {
            return Decode(bytes, FilePath);
        }
        catch (JournalCorruptException e) when (File.Exists(PreviousPath))
        {
            // Still damage, and never replaced by a guess: but the operator learns where the last good copy is.
            throw new JournalCorruptException(FilePath, $"{e.Reason}; the journal it replaced is kept as {PreviousPath} (it lacks the originals of the last save)");
        }
    }

    public static TuningJournal Decode(byte[] bytes, string path) => Migrate(DecodeAsWritten(bytes, path));

    /// <summary>The journal in the format it was written in, not migrated.</summary>
    private static TuningJournal DecodeAsWritten(byte[] bytes, string path)
    {
        var text = Encoding.UTF8.GetString(bytes);
        var newline = text.IndexOf('\n');
        if (newline < 0 || !text.StartsWith(Magic, StringComparison.Ordinal))
            throw new JournalCorruptException(path, "the header line is missing");
        var declared = text[Magic.Length..newline];
        var body = text[(newline + 1)..];
        var actual = Hash(body);
        if (!string.Equals(declared, actual, StringComparison.Ordinal))
            throw new JournalCorruptException(path, $"checksum mismatch (header {Truncate(declared)}, body {actual[..12]})");
        try
        {
            var journal = JsonSerializer.Deserialize(body, JournalJson.Default.TuningJournal);
            if (journal?.Entries is null || journal.Entries.Any(e => e is null || e.Knob is null || e.Path is null || e.Original is null))
                throw new JournalCorruptException(path, "an entry lacks its knob, path or original value");
            return journal;
        }
        catch (JsonException e)
        {
            throw new JournalCorruptException(path, $"the body is not valid JSON ({e.Message})");
        }
    }

    /// <summary>
    /// Format 1 had entries only: nothing of it changes meaning, it gains the version (and no boot: the first save in
    /// this boot records one). A newer format is kept as read: its additions are optional fields this agent ignores.
    /// </summary>
    private static TuningJournal Migrate(TuningJournal journal) =>
        journal.FormatVersion is null or < 2 ? journal with { FormatVersion = 2 } : journal;

    public static byte[] Encode(TuningJournal journal)
    {
        var body = JsonSerializer.Serialize(journal with { FormatVersion = TuningJournal.CurrentFormat }, JournalJson.Default.TuningJournal) + "\n";
        return Encoding.UTF8.GetBytes(Magic + Hash(body) + "\n" + body);
    }

    public void Save(TuningJournal journal)
    {
        System.IO.Directory.CreateDirectory(Directory);
        KeepPreviousGoodCopy();
        using (var fs = new FileStream(TempPath, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            fs.Write(Encode(journal));
            fs.Flush(flushToDisk: true);
        }
        _faultPoint?.Invoke("after-temp-write");
        File.Move(TempPath, FilePath, overwrite: true);
        _faultPoint?.Invoke("after-rename");
        FsyncDirectory();
    }

    private void KeepPreviousGoodCopy()
    {
        if (!File.Exists(FilePath)) return;
        var bytes = File.ReadAllBytes(FilePath);
        int format;
        try
        {
            format = DecodeAsWritten(bytes, FilePath).FormatVersion ?? 1;
        }
        catch (JournalCorruptException)
        {
            return; // a damaged journal is never saved over (apply stops first); nothing good to keep
        }
        // The last copy in an older format, kept at the upgrade, stays until the journal is done with: it is what
        // an agent of that version would need.
        if (File.Exists(PreviousPath) && PreviousFormat() is { } previous && previous < format) return;
        var temp = PreviousPath + ".tmp";
        using (var fs = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            fs.Write(bytes);
            fs.Flush(flushToDisk: true);
        }
        File.Move(temp, PreviousPath, overwrite: true);
    }

    private int? PreviousFormat()
    {
        try
        {
            return DecodeAsWritten(File.ReadAllBytes(PreviousPath), PreviousPath).FormatVersion ?? 1;
        }
        catch (JournalCorruptException)
        {
            return null;
        }
    }

    /// <summary>Removes the journal once every original is back.</summary>
    public void Delete()
    {
        if (!System.IO.Directory.Exists(Directory)) return;
        File.Delete(TempPath);
        File.Delete(PreviousPath);
        if (!File.Exists(FilePath)) return;
        File.Delete(FilePath);
        FsyncDirectory();
    }

    private unsafe void FsyncDirectory()
    {
        var bytes = Encoding.UTF8.GetBytes(Directory + "\0");
        int fd;
        fixed (byte* p = bytes) fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
        if (fd < 0) throw new IOException($"open {Directory} to fsync it: {Host.Errnos.Describe(errno)}");
        try
        {
            if (fsync(fd) < 0) throw new IOException($"fsync {Directory}: {Host.Errnos.Describe(errno)}");
        }
        finally
        {
            close(fd);
        }
    }

    private static string Hash(string body) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(body)));

    private static string Truncate(string s) => s.Length > 12 ? s[..12] : s;
}

/// <summary>The journal's JSON, generated at build time (the agent runs under NativeAOT): property names as declared, enums as names.</summary>
[JsonSourceGenerationOptions(WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, UseStringEnumConverter = true)]
[JsonSerializable(typeof(TuningJournal))]
internal sealed partial class JournalJson : JsonSerializerContext;
