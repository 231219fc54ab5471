using System.Globalization;
using System.IO.Compression;

namespace Har.Fleet.Tests;

/// <summary>One recorded device: interleaved ax ay az gx gy gz frames at 50 Hz.</summary>
internal sealed record DeviceStream(string StreamId, float[] Samples)
{
    public int Frames => Samples.Length / 6;
}

/// <summary>Reads sessions of the HAPT test subjects from the shared data (read in place, never copied), as device streams.</summary>
internal static class HaptStreams
{
    /// <summary>The first <paramref name="count"/> test-subject sessions, each cut to at most <paramref name="maxFrames"/> frames.</summary>
    public static List<DeviceStream> Load(string folder, int count, int maxFrames)
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

        var streams = new List<DeviceStream>();
        using var file = File.OpenRead(Path.Combine(folder, "hapt_raw_50hz.csv.gz"));
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var reader = new StreamReader(gzip, bufferSize: 1 << 16);
        _ = reader.ReadLine();
        var samples = new List<float>(maxFrames * 6);
        (int Subject, int Session) current = (-1, -1);
        Span<Range> ranges = stackalloc Range[11];
        string? text;
        while (streams.Count < count && (text = reader.ReadLine()) is not null)
        {
            var span = text.AsSpan();
            span.Split(ranges, ',');
            var subject = int.Parse(span[ranges[0]], CultureInfo.InvariantCulture);
            if (!testSubjects.Contains(subject))
            {
                continue;
            }

            var session = int.Parse(span[ranges[1]], CultureInfo.InvariantCulture);
            if ((subject, session) != current)
            {
                Flush();
                current = (subject, session);
            }

            if (samples.Count < maxFrames * 6)
            {
                for (var c = 0; c < 6; c++)
                {
                    samples.Add(float.Parse(span[ranges[3 + c]], NumberStyles.Float, CultureInfo.InvariantCulture));
                }
            }
        }

        Flush();
        return streams.Count >= count ? streams[..count] : streams;

        void Flush()
        {
            if (current.Subject >= 0 && samples.Count > 0 && streams.Count < count)
            {
                streams.Add(new DeviceStream($"hapt-s{current.Subject}-r{current.Session}", samples.ToArray()));
            }

            samples.Clear();
        }
    }
}
