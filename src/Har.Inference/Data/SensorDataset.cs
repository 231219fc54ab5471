using System.Globalization;
using System.IO.Compression;

namespace Har.Inference.Data;

/// <summary>
/// Reads a labelled IMU dataset in the common sample format (the layout of the UCI HAPT folder):
/// a gzip-compressed CSV of samples (<c>subject,session,t_index,ax,ay,az,gx,gy,gz,label</c>, accelerometer
/// in g, gyroscope in rad/s), <c>labels.csv</c> (<c>id,name,kind</c>) and <c>splits.csv</c>
/// (<c>subject,split</c>). Rows of a session are contiguous and in time order.
/// </summary>
public static class SensorDataset
{
    /// <summary>The file name of the samples in the UCI HAPT folder.</summary>
    public const string SamplesFile = "hapt_raw_50hz.csv.gz";
    private const string Header = "subject,session,t_index,ax,ay,az,gx,gy,gz,label";

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
            names[int.Parse(parts[0], CultureInfo.InvariantCulture)] = parts[1];
        }

        var result = new string[names.Keys.Max() + 1];
        foreach (var (id, name) in names)
        {
            result[id] = name;
        }

        return result;
    }

    /// <summary>Subject id → split (<c>train</c>/<c>test</c>) from <c>splits.csv</c>.</summary>
    public static Dictionary<int, string> LoadSplits(string folder)
    {
        var path = RequireFile(folder, "splits.csv");
        var result = new Dictionary<int, string>();
        foreach (var line in File.ReadLines(path).Skip(1))
        {
            if (line.Length == 0)
            {
                continue;
            }

            var parts = line.Split(',');
            result[int.Parse(parts[0], CultureInfo.InvariantCulture)] = parts[1].Trim();
        }

        return result;
    }

    /// <summary>
    /// Loads every session, or only those of one split (<c>train</c> or <c>test</c>), in file order.
    /// </summary>
    public static List<SensorSession> Load(string folder, string? split = null, IProgress<double>? progress = null, CancellationToken cancellationToken = default)
    {
        if (split is not null and not "train" and not "test")
        {
            throw new ArgumentException($"Split '{split}' is not known; expected 'train' or 'test'.", nameof(split));
        }

        var splits = LoadSplits(folder);
        var path = RequireFile(folder, SamplesFile);
        var sessions = new List<SensorSession>();

        using var file = File.OpenRead(path);
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var reader = new StreamReader(gzip, bufferSize: 1 << 16);
        var header = reader.ReadLine();
        if (header != Header)
        {
            throw new InvalidDataException($"'{path}' starts with '{header}'; expected the header '{Header}'.");
        }

        var samples = new List<float>(6 * 40_000);
        var labels = new List<byte>(40_000);
        int currentSubject = -1, currentSession = -1;
        long lineNo = 1;
        Span<Range> ranges = stackalloc Range[11];

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
        while ((line = reader.ReadLine()) is not null)
        {
            lineNo++;
            if ((lineNo & 0xFFFF) == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
                progress?.Report((double)file.Position / file.Length);
            }

            var span = line.AsSpan();
            if (span.Split(ranges, ',') != 10)
            {
                throw new InvalidDataException($"'{path}' line {lineNo} has the wrong number of fields; expected 10 ({Header}).");
            }

            var subject = int.Parse(span[ranges[0]], CultureInfo.InvariantCulture);
            var session = int.Parse(span[ranges[1]], CultureInfo.InvariantCulture);
            if (session != currentSession)
            {
                Flush();
                currentSubject = subject;
                currentSession = session;
            }

            for (var c = 0; c < 6; c++)
            {
                samples.Add(float.Parse(span[ranges[3 + c]], NumberStyles.Float, CultureInfo.InvariantCulture));
            }

            labels.Add(byte.Parse(span[ranges[9]], CultureInfo.InvariantCulture));
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
            throw new FileNotFoundException($"'{path}' does not exist; expected a folder in the UCI HAPT layout ({SamplesFile}, labels.csv, splits.csv), e.g. ../shared/data/uci-hapt.", path);
        }

        return path;
    }
}
