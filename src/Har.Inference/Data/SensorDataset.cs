using System.Globalization;
using System.IO.Compression;

namespace Har.Inference.Data;

/// <summary>
/// Reads a labelled IMU dataset in the common sample format (the layout of the UCI HAPT folder):
/// a gzip-compressed CSV of samples (<c>subject,session,t_index,ax,ay,az,gx,gy,gz,label</c>, accelerometer
/// in g, gyroscope in rad/s), <c>labels.csv</c> (<c>id,name,kind</c>) and <c>splits.csv</c>
/// (<c>subject,split</c>). Rows of a session are contiguous and in time order.
/// </summary>
internal static class SensorDataset
{
    /// <summary>The file name of the samples in the UCI HAPT folder.</summary>
    public const string SamplesFile = "hapt_raw_50hz.csv.gz";
    private const string Header = "subject,session,t_index,ax,ay,az,gx,gy,gz,label";

    /// <summary>The channels of a frame, in order.</summary>
    public static readonly string[] ChannelNames = ["ax", "ay", "az", "gx", "gy", "gz"];

    /// <summary>
    /// The sample rate of the recordings from <c>sessions.csv</c> (<c>subject,session,n_samples,duration_s,…</c>):
    /// their samples over their duration, or <see langword="null"/> when the folder has no such file or it does not
    /// say (the file is optional in the format).
    /// </summary>
    /// <param name="folder">The dataset folder.</param>
    /// <returns>The rate in hertz, or <see langword="null"/>.</returns>
    public static double? LoadSampleRate(string folder)
    {
        var path = Path.Combine(folder, "sessions.csv");
        if (!File.Exists(path))
        {
            return null;
        }

        using var lines = File.ReadLines(path).GetEnumerator();
        if (!lines.MoveNext())
        {
            return null;
        }

        var header = lines.Current.Split(',').Select(h => h.Trim()).ToArray();
        var (samplesColumn, durationColumn) = (Array.IndexOf(header, "n_samples"), Array.IndexOf(header, "duration_s"));
        if (samplesColumn < 0 || durationColumn < 0)
        {
            return null;
        }

        double samples = 0, seconds = 0;
        while (lines.MoveNext())
        {
            var fields = lines.Current.Split(',');
            if (fields.Length > Math.Max(samplesColumn, durationColumn)
                && double.TryParse(fields[samplesColumn], NumberStyles.Float, CultureInfo.InvariantCulture, out var n)
                && double.TryParse(fields[durationColumn], NumberStyles.Float, CultureInfo.InvariantCulture, out var d)
                && n > 0 && d > 0)
            {
                samples += n;
                seconds += d;
            }
        }

        return seconds > 0 ? samples / seconds : null;
    }

    /// <summary>Activity names by id from <c>labels.csv</c> (index 0 = UNLABELED).</summary>
    public static string[] LoadLabelNames(string folder)
    {
        var path = RequireFile(folder, "labels.csv");
        var names = new SortedDictionary<int, string>();
        foreach (var line in File.ReadLines(path).Skip(1))
        {
            if (line.Length == 0)
            {
                continue;
            }

            var parts = line.Split(',');
            if (parts.Length < 2 || !int.TryParse(parts[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var id) || id is < 0 or > byte.MaxValue)
            {
                throw new InvalidDataException($"'{path}' has the line '{line}'; expected 'id,name' with an id from 0 to 255.");
            }

            names[id] = parts[1].Trim();
        }

        if (names.Count == 0)
        {
            throw new InvalidDataException($"'{path}' lists no labels; expected a header and one 'id,name' line per activity.");
        }

        var result = new string[names.Keys.Max() + 1];
        foreach (var (id, name) in names)
        {
            result[id] = name;
        }

        return result;
    }

    /// <summary>Subject id → split (<c>train</c>/<c>test</c>) from <c>splits.csv</c>, or an empty map when the folder has none.</summary>
    /// <param name="folder">The dataset folder.</param>
    /// <returns>The split of each subject listed.</returns>
    internal static Dictionary<int, string> LoadSplits(string folder)
    {
        var path = Path.Combine(folder, "splits.csv");
        var result = new Dictionary<int, string>();
        if (!File.Exists(path))
        {
            return result;
        }

        foreach (var line in File.ReadLines(path).Skip(1))
        {
            if (line.Length == 0)
            {
                continue;
            }

            var parts = line.Split(',');
            if (parts.Length < 2 || !int.TryParse(parts[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var subject))
            {
                throw new InvalidDataException($"'{path}' has the line '{line}'; expected 'subject,split' with an integer subject and a split such as train or test.");
            }

            result[subject] = parts[1].Trim();
        }

        return result;
    }

    /// <summary>
    /// Finds the samples file of a dataset folder: <paramref name="fileName"/> if given, else <see cref="SamplesFile"/>
    /// if present, else the folder's only <c>*.csv.gz</c> (or <c>*.csv</c>) other than <c>labels.csv</c>,
    /// <c>sessions.csv</c> and <c>splits.csv</c>.
    /// </summary>
    /// <param name="folder">The dataset folder.</param>
    /// <param name="fileName">The samples file's name in the folder, or <see langword="null"/> to find it.</param>
    /// <returns>The full path.</returns>
    /// <exception cref="FileNotFoundException">No samples file, or several candidates and no <paramref name="fileName"/>.</exception>
    public static string FindSamplesFile(string folder, string? fileName = null)
    {
        if (fileName is not null)
        {
            return RequireFile(folder, fileName);
        }

        if (!Directory.Exists(folder))
        {
            throw new DirectoryNotFoundException($"Dataset folder '{folder}' does not exist; expected a folder in the common sample format (a samples .csv.gz, labels.csv, optionally splits.csv).");
        }

        var standard = Path.Combine(folder, SamplesFile);
        if (File.Exists(standard))
        {
            return standard;
        }

        string[] metadata = ["labels.csv", "sessions.csv", "splits.csv"];
        var candidates = Directory.GetFiles(folder, "*.csv.gz");
        if (candidates.Length == 0)
        {
            candidates = [.. Directory.GetFiles(folder, "*.csv").Where(f => !metadata.Contains(Path.GetFileName(f), StringComparer.OrdinalIgnoreCase))];
        }

        return candidates.Length switch
        {
            1 => candidates[0],
            0 => throw new FileNotFoundException($"'{folder}' holds no samples file (*.csv.gz or *.csv besides labels.csv, sessions.csv, splits.csv); expected the common sample format.", folder),
            _ => throw new FileNotFoundException($"'{folder}' holds several samples files ({string.Join(", ", candidates.Select(Path.GetFileName).Order(StringComparer.Ordinal))}); name the one to read.", folder),
        };
    }

    /// <summary>
    /// Loads every session, or only those of one split, in file order. Columns are found by name in the header
    /// (<c>subject,session,ax,ay,az,gx,gy,gz,label</c>; others such as <c>t_index</c> are ignored).
    /// </summary>
    /// <param name="folder">The dataset folder.</param>
    /// <param name="split"><c>train</c> or <c>test</c> (subjects from <c>splits.csv</c>), or <see langword="null"/> or <c>all</c> for every session.</param>
    /// <param name="progress">Receives the fraction read, or <see langword="null"/>.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>The sessions.</returns>
    /// <exception cref="ArgumentException">The split is not known, or a split is asked for and the folder has no <c>splits.csv</c>.</exception>
    /// <exception cref="InvalidDataException">A header without the needed columns, or a malformed row (named by line).</exception>
    public static List<SensorSession> Load(string folder, string? split = null, IProgress<double>? progress = null, CancellationToken cancellationToken = default) =>
        Load(folder, split, samplesFile: null, progress, cancellationToken);

    /// <summary>Loads the sessions of one split from a named samples file (see <see cref="Load(string, string?, IProgress{double}?, CancellationToken)"/>).</summary>
    /// <param name="folder">The dataset folder.</param>
    /// <param name="split"><c>train</c>, <c>test</c>, or <see langword="null"/> or <c>all</c> for every session.</param>
    /// <param name="samplesFile">The samples file's name in the folder, or <see langword="null"/> to find it (<see cref="FindSamplesFile"/>).</param>
    /// <param name="progress">Receives the fraction read, or <see langword="null"/>.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>The sessions.</returns>
    public static List<SensorSession> Load(string folder, string? split, string? samplesFile, IProgress<double>? progress, CancellationToken cancellationToken)
    {
        if (split is "all")
        {
            split = null;
        }

        if (split is not null and not "train" and not "test")
        {
            throw new ArgumentException($"Split '{split}' is not known; expected 'train', 'test' or 'all'.", nameof(split));
        }

        var splits = LoadSplits(folder);
        if (split is not null && splits.Count == 0)
        {
            throw new ArgumentException($"Split '{split}' was asked for, but '{folder}' has no splits.csv; use the split 'all'.", nameof(split));
        }

        var path = FindSamplesFile(folder, samplesFile);
        var sessions = new List<SensorSession>();

        using var file = File.OpenRead(path);
        using var gzip = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(file, CompressionMode.Decompress) : (Stream)file;
        using var reader = new StreamReader(gzip, bufferSize: 1 << 16);
        var header = ReadSamplesLine(reader, path, 1) ?? string.Empty;
        var names = header.Split(',').Select(h => h.Trim()).ToArray();
        string[] needed = ["subject", "session", .. ChannelNames, "label"];
        var columns = needed.Select(n => Array.IndexOf(names, n)).ToArray();
        if (columns.Any(c => c < 0))
        {
            throw new InvalidDataException($"'{path}' has the header '{header}'; expected the columns {Header} (t_index optional).");
        }

        var samples = new List<float>(6 * 40_000);
        var labels = new List<byte>(40_000);
        int currentSubject = -1, currentSession = -1;
        long lineNo = 1;
        Span<Range> ranges = stackalloc Range[names.Length + 1];

        void Flush()
        {
            if (currentSession >= 0 && labels.Count > 0)
            {
                var s = splits.TryGetValue(currentSubject, out var v) ? v : "unknown";
                if (split is null || s == split)
                {
                    sessions.Add(new SensorSession(currentSubject, currentSession, s, [.. samples], [.. labels]));
                }
            }

            samples.Clear();
            labels.Clear();
        }

        string? line;
        while ((line = ReadSamplesLine(reader, path, lineNo + 1)) is not null)
        {
            lineNo++;
            if ((lineNo & 0xFFFF) == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
                progress?.Report((double)file.Position / file.Length);
            }

            if (line.Length == 0)
            {
                continue;
            }

            var span = line.AsSpan();
            if (span.Split(ranges, ',') != names.Length)
            {
                throw new InvalidDataException($"'{path}' line {lineNo} has the wrong number of fields; expected {names.Length} as in the header '{header}'.");
            }

            try
            {
                var subject = int.Parse(span[ranges[columns[0]]], CultureInfo.InvariantCulture);
                var session = int.Parse(span[ranges[columns[1]]], CultureInfo.InvariantCulture);
                if (session != currentSession || subject != currentSubject)
                {
                    Flush();
                    currentSubject = subject;
                    currentSession = session;
                }

                for (var c = 0; c < 6; c++)
                {
                    samples.Add(float.Parse(span[ranges[columns[2 + c]]], NumberStyles.Float, CultureInfo.InvariantCulture));
                }

                labels.Add(byte.Parse(span[ranges[columns[8]]], CultureInfo.InvariantCulture));
            }
            catch (Exception ex) when (ex is FormatException or OverflowException)
            {
                throw new InvalidDataException($"'{path}' line {lineNo} has a malformed number ({ex.Message}); expected integer subject, session and label (0-255) and decimal sensor values.", ex);
            }
        }

        Flush();
        progress?.Report(1.0);
        return sessions;
    }

    private static string RequireFile(string folder, string name)
    {
        var path = Path.Combine(folder, name);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"'{path}' does not exist; expected a folder in the common sample format (a samples .csv.gz, labels.csv, optionally splits.csv), e.g. ../shared/data/uci-hapt.", path);
        }

        return path;
    }

    /// <summary>
    /// A line of the samples file; a .gz file that is not gzip or is damaged is named with the line where it failed
    /// (GZipStream's "The archive entry was compressed using an unsupported compression method." named neither).
    /// </summary>
    private static string? ReadSamplesLine(StreamReader reader, string path, long lineNo)
    {
        try
        {
            return reader.ReadLine();
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"'{path}' does not decompress at line {lineNo} ({ex.Message}); expected the samples CSV, gzip-compressed when its name ends in .gz."), ex);
        }
    }
}
