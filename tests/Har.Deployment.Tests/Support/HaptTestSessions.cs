using System.Globalization;
using System.IO.Compression;

namespace Har.Deployment.Tests.Support;

/// <summary>Reads the test subjects' sessions of the shared UCI HAPT layout (read in place, never copied).</summary>
internal static class HaptTestSessions
{
    public static List<RecordedSession> Load(string folder)
    {
        var testSubjects = new HashSet<int>();
        foreach (var line in File.ReadLines(Path.Combine(folder, "splits.csv")).Skip(1))
        {
            var parts = line.Split(',');
            if (parts.Length == 2 && parts[1].Trim() == "test")
            {
                testSubjects.Add(int.Parse(parts[0], CultureInfo.InvariantCulture));
            }
        }

        var sessions = new List<RecordedSession>();
        using var file = File.OpenRead(Path.Combine(folder, "hapt_raw_50hz.csv.gz"));
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var reader = new StreamReader(gzip, bufferSize: 1 << 16);
        _ = reader.ReadLine();
        var samples = new List<float>();
        var labels = new List<int>();
        var current = -1;
        var subject = -1;
        Span<Range> ranges = stackalloc Range[11];
        string? text;
        while ((text = reader.ReadLine()) is not null)
        {
            var span = text.AsSpan();
            span.Split(ranges, ',');
            var s = int.Parse(span[ranges[0]], CultureInfo.InvariantCulture);
            var session = int.Parse(span[ranges[1]], CultureInfo.InvariantCulture);
            if (session != current)
            {
                if (current >= 0 && testSubjects.Contains(subject))
                {
                    sessions.Add(new RecordedSession($"subject{subject}-session{current}", samples.ToArray(), labels.ToArray()));
                }

                samples.Clear();
                labels.Clear();
                current = session;
                subject = s;
            }

            if (testSubjects.Contains(s))
            {
                for (var c = 0; c < 6; c++)
                {
                    samples.Add(float.Parse(span[ranges[3 + c]], NumberStyles.Float, CultureInfo.InvariantCulture));
                }

                // HAPT label ids are 1-based (0 = not in any labelled segment); the models' classes are id − 1.
                labels.Add(int.Parse(span[ranges[9]], CultureInfo.InvariantCulture) - 1);
            }
        }

        if (current >= 0 && testSubjects.Contains(subject))
        {
            sessions.Add(new RecordedSession($"subject{subject}-session{current}", samples.ToArray(), labels.ToArray()));
        }

        return sessions;
    }
}
