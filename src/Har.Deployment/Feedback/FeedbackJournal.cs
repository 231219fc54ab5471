using System.Text;
using System.Text.Json;

namespace Har.Deployment;

/// <summary>
/// The labelled windows of a single-process deployment on disk (<c>feedback.jsonl</c> beside <c>rollout.json</c>), so a
/// restart does not throw away the accuracy gate's evidence: one JSON line per labelled window (the true activity and
/// each version's answer, by name), appended as it is labelled. Each append reaches the operating system before the
/// label's request is answered (so it survives the process being killed); <see cref="Sync"/> makes the file durable
/// against power loss at each reconciliation. It keeps the most recent <c>capacity</c> windows, as the store does: past
/// twice that many lines it is rewritten with the newest ones (temp file, fsync, rename, directory fsync).
/// </summary>
internal sealed class FeedbackJournal : IDisposable
{
    /// <summary>The journal's file name in the rollout state directory.</summary>
    public const string FileName = "feedback.jsonl";

    /// <summary>One window per line: the rollout state's JSON settings, not indented.</summary>
    private static readonly JsonSerializerOptions Line = new(RolloutStateStore.Json) { WriteIndented = false };

    private readonly Lock _lock = new();
    private readonly string _path;
    private readonly int _capacity;
    private FileStream _file;
    private long _lines;
    private bool _dirty;

    private FeedbackJournal(string path, int capacity, long lines)
    {
        _path = path;
        _capacity = capacity;
        _lines = lines;
        _file = OpenAppend(path);
    }

    /// <summary>Gets the journal's path.</summary>
    public string Path => _path;

    /// <summary>
    /// Opens the journal at <paramref name="path"/> (created when absent) and reads the windows it holds, the newest
    /// <paramref name="capacity"/>. A line that does not parse — the last one, torn by a crash mid-write — is skipped and
    /// counted in <paramref name="skipped"/>.
    /// </summary>
    /// <param name="path">The journal.</param>
    /// <param name="capacity">The most windows kept.</param>
    /// <param name="windows">The windows read.</param>
    /// <param name="skipped">The lines that did not parse.</param>
    /// <param name="keptAside">When more than a torn last line did not parse (damage: a disk, an editor, a bad copy), the
    /// path of the copy of the file as it was, made before the journal is rewritten with the windows read; otherwise
    /// <see langword="null"/>. Those labels cannot be collected again, so the file is not silently replaced.</param>
    /// <param name="now">The time in the kept copy's name.</param>
    public static FeedbackJournal Open(string path, int capacity, DateTimeOffset now, out List<ShippedLabel> windows, out int skipped, out string? keptAside)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
        windows = Read(File.Exists(path) ? File.ReadLines(path) : [], capacity, out var lines, out skipped);
        keptAside = null;
        if (skipped > 1 || (skipped == 1 && Parse(File.ReadLines(path).LastOrDefault(l => l.Length > 0) ?? string.Empty) is not null))
        {
            keptAside = $"{path}.damaged-{now.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", System.Globalization.CultureInfo.InvariantCulture)}";
            File.Copy(path, keptAside, overwrite: true);
        }

        var journal = new FeedbackJournal(path, capacity, lines);
        if (lines > 2L * capacity || skipped > 0)
        {
            journal.Rewrite(windows); // start from whole lines only: an append after a torn one would join it
        }

        return journal;
    }

    /// <summary>
    /// Reads journal lines: the windows of the newest <paramref name="capacity"/> lines that parse, oldest first; the
    /// non-empty lines read and those that did not parse (a line torn by a crash) are counted.
    /// </summary>
    public static List<ShippedLabel> Read(IEnumerable<string> text, int capacity, out long lines, out int skipped)
    {
        var windows = new List<ShippedLabel>();
        (lines, skipped) = (0, 0);
        foreach (var line in text)
        {
            if (line.Length == 0)
            {
                continue;
            }

            lines++;
            if (Parse(line) is { } label)
            {
                windows.Add(label);
            }
            else
            {
                skipped++;
            }
        }

        if (windows.Count > capacity)
        {
            windows.RemoveRange(0, windows.Count - capacity);
        }

        return windows;
    }

    /// <summary>The journal's bytes for <paramref name="windows"/>: one JSON line each, in order.</summary>
    public static byte[] Serialize(IEnumerable<ShippedLabel> windows)
    {
        var content = new MemoryStream();
        foreach (var w in windows)
        {
            content.Write(LineOf(w));
        }

        return content.ToArray();
    }

    /// <summary>Appends one labelled window; it reaches the operating system before this returns.</summary>
    public void Append(ShippedLabel window)
    {
        var bytes = LineOf(window);
        lock (_lock)
        {
            _file.Write(bytes);
            _file.Flush(flushToDisk: false);
            _dirty = true;
            if (++_lines > 2L * _capacity)
            {
                _file.Dispose();
                var newest = new List<ShippedLabel>(_capacity);
                foreach (var line in File.ReadLines(_path).Reverse())
                {
                    if (newest.Count == _capacity)
                    {
                        break;
                    }

                    if (line.Length > 0 && Parse(line) is { } label)
                    {
                        newest.Add(label);
                    }
                }

                newest.Reverse();
                Rewrite(newest);
            }
        }
    }

    /// <summary>Makes what was appended durable (fsync), if anything was since the last call.</summary>
    public void Sync()
    {
        lock (_lock)
        {
            if (_dirty)
            {
                _file.Flush(flushToDisk: true);
                _dirty = false;
            }
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _file.Flush(flushToDisk: true);
            _file.Dispose();
        }
    }

    /// <summary>One window's line: its JSON, not indented, and a newline.</summary>
    private static byte[] LineOf(ShippedLabel window) => Encoding.UTF8.GetBytes(JsonSerializer.Serialize(window, Line) + "\n");

    private static ShippedLabel? Parse(string line)
    {
        try
        {
            return JsonSerializer.Deserialize<ShippedLabel>(line, Line) is { Truth: not null, Predictions: not null } label ? label : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static FileStream OpenAppend(string path) => new(path, FileMode.Append, FileAccess.Write, FileShare.Read, 4096, FileOptions.None);

    /// <summary>Replaces the file with <paramref name="windows"/> (temp file, fsync, rename, directory fsync) and reopens it for appending.</summary>
    private void Rewrite(List<ShippedLabel> windows)
    {
        var content = Serialize(windows);
        _file.Dispose();
        DurableFile.WriteAtomic(_path, content);
        _lines = windows.Count;
        _file = OpenAppend(_path);
    }
}
