using BenchmarkDotNet.Attributes;
using Har.Drift;
using Har.Inference.Data;

namespace Har.Benchmarks.Drift;

/// <summary>
/// Real streams for the device drift benchmarks: the UCI HAPT test subjects' recordings, read in place from
/// <c>../shared/data/uci-hapt</c> (or the folder in <c>HAR_DATA</c>), and a reference profile of the training subjects
/// built as <c>har drift profile</c> builds it (cached in the temp folder, keyed by the samples file and the Har.Drift
/// build, so that each benchmark process does not rebuild it).
/// </summary>
internal static class HaptStreams
{
    private static readonly Lazy<(ReferenceProfile Profile, float[][] TestSessions, float[][] TrainingSessions)> Data = new(Load);

    public static ReferenceProfile Profile => Data.Value.Profile;

    /// <summary>The test subjects' recordings, interleaved <c>ax ay az gx gy gz</c> frames.</summary>
    public static float[][] TestSessions => Data.Value.TestSessions;

    /// <summary>The training subjects' recordings (the profile's), interleaved frames.</summary>
    public static float[][] TrainingSessions => Data.Value.TrainingSessions;

    private static (ReferenceProfile, float[][], float[][]) Load()
    {
        var folder = Folder();
        var samples = new FileInfo(SensorDataset.FindSamplesFile(folder));
        var library = new FileInfo(typeof(ReferenceProfile).Assembly.Location);
        var key = FormattableString.Invariant($"{samples.Length:x}-{samples.LastWriteTimeUtc.Ticks:x}-{library.Length:x}-{library.LastWriteTimeUtc.Ticks:x}");
        var cache = Path.Combine(Path.GetTempPath(), $"har-bench-profile-{key}.json");
        var sessions = SensorDataset.Load(folder);
        ReferenceProfile profile;
        if (File.Exists(cache))
        {
            profile = ReferenceProfile.Load(cache);
        }
        else
        {
            var builder = new ReferenceProfileBuilder(["ax", "ay", "az", "gx", "gy", "gz"]);
            foreach (var s in sessions.Where(s => s.Split == "train"))
            {
                builder.AddRecording($"subject-{s.Subject}", s.Samples);
            }

            profile = builder.Build("UCI HAPT training subjects (benchmark)");
            var tmp = cache + "." + Environment.ProcessId + ".tmp";
            profile.Save(tmp);
            File.Move(tmp, cache, overwrite: true);
        }

        return (profile, [.. sessions.Where(s => s.Split == "test").Select(s => s.Samples)], [.. sessions.Where(s => s.Split == "train").Select(s => s.Samples)]);
    }

    private static string Folder()
    {
        if (Environment.GetEnvironmentVariable("HAR_DATA") is { Length: > 0 } configured)
        {
            return configured;
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Har.sln")))
            {
                var shared = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "data", "uci-hapt"));
                if (Directory.Exists(shared))
                {
                    return shared;
                }

                throw new DirectoryNotFoundException($"The device drift benchmarks run on the UCI HAPT recordings, read in place from '{shared}' (not found). Put the dataset there or set HAR_DATA to its folder.");
            }
        }

        throw new DirectoryNotFoundException("The device drift benchmarks run on the UCI HAPT recordings: set HAR_DATA to the dataset folder (the repository root, to find ../shared/data/uci-hapt from, was not found above the benchmark's folder).");
    }
}

/// <summary>
/// What a serving host pays per predicted window to keep a device's drift monitor fed:
/// <see cref="DeviceDriftMonitor.Observe"/> of a 200-frame window whose first 100 frames the device sent with its previous
/// window (stride 100, as the bundled models window a stream), over 64 devices in turn, each replaying a HAPT test
/// recording. Baseline: copying the window's 100 new frames into a per-device ring (what any buffering costs).
/// </summary>
[MemoryDiagnoser]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "BenchmarkDotNet disposes in [GlobalCleanup].")]
public class DeviceDriftObserveBenchmarks
{
    private const int Devices = 64;
    private const int Window = 200;
    private const int Stride = 100;
    private const int Channels = 6;
    private DeviceDriftMonitor _monitor = null!;
    private float[][] _streams = [];
    private string[] _ids = [];
    private int[] _cursor = [];
    private float[][] _rings = [];
    private int[] _ringAt = [];
    private int _device;

    [GlobalSetup]
    public void Setup()
    {
        var sessions = HaptStreams.TestSessions;
        _streams = [.. Enumerable.Range(0, Devices).Select(i => sessions[i % sessions.Length])];
        _ids = [.. Enumerable.Range(0, Devices).Select(i => $"device-{i}")];
        _cursor = new int[Devices];
        _rings = [.. Enumerable.Range(0, Devices).Select(_ => new float[3000 * Channels])];
        _ringAt = new int[Devices];
        _monitor = new DeviceDriftMonitor(HaptStreams.Profile, new DriftMonitorOptions { MaxDevices = Devices });
        for (var i = 0; i < Devices; i++)
        {
            // Each device starts at another point of its recording, and is seen once before the measured calls.
            _cursor[i] = (i * 997 * Stride) % (_streams[i].Length / Channels - Window);
            Observe();
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _monitor.Dispose();

    [Benchmark(Baseline = true, Description = "copy the window's 100 new frames into the device's ring")]
    public int CopyNewFrames()
    {
        var window = Next(out var d);
        var ring = _rings[d];
        var fresh = window[((Window - Stride) * Channels)..];
        var at = _ringAt[d];
        var first = Math.Min(fresh.Length, ring.Length - at);
        fresh[..first].CopyTo(ring.AsSpan(at));
        fresh[first..].CopyTo(ring);
        _ringAt[d] = (at + fresh.Length) % ring.Length;
        return _ringAt[d];
    }

    [Benchmark(Description = "DeviceDriftMonitor.Observe (window of 200, 100 new frames)")]
    public int Observe()
    {
        var window = Next(out var d);
        _monitor.Observe(_ids[d], window, Window - Stride, predictedClass: 0, confidence: 0.9f, entropy: 0.3f);
        return d;
    }

    private ReadOnlySpan<float> Next(out int d)
    {
        d = _device;
        _device = (d + 1) % Devices;
        var frames = _streams[d].Length / Channels;
        var start = _cursor[d];
        if (start + Window > frames)
        {
            start = 0;
        }

        _cursor[d] = start + Stride;
        return _streams[d].AsSpan(start * Channels, Window * Channels);
    }
}

/// <summary>
/// What scoring a device costs, one minute of HAPT test recording (3,000 frames, the profile's window), three ways:
/// the classic per-channel drift test (Kolmogorov–Smirnov against the reference's sorted sample of 20,000 values per
/// channel, and PSI over 10 quantile bins: what per-column drift tools compute) as the baseline;
/// <see cref="DriftScorer.Score(ReadOnlySpan{float}, ReadOnlySpan{long})"/> of the minute on its own (every check, no device history); and a
/// <see cref="DeviceDriftMonitor"/> scoring a device every half minute as its timer does (the 1,500 new frames fed as
/// 15 windows, then <see cref="DeviceDriftMonitor.ScoreNow"/> with the device's history and sequential alarm), over 16
/// devices in turn.
/// </summary>
[MemoryDiagnoser]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "BenchmarkDotNet disposes in [GlobalCleanup].")]
public class DeviceDriftScoringBenchmarks
{
    private const int Devices = 16;
    private const int Minute = 3000;
    private const int Half = 1500;
    private const int Stride = 100;
    private const int Channels = 6;
    private DriftScorer _scorer = null!;
    private DeviceDriftMonitor _monitor = null!;
    private float[][] _streams = [];
    private string[] _ids = [];
    private int[] _cursor = [];
    private double[][] _sortedReference = [];
    private double[][] _edges = [];
    private long[][] _referenceCounts = [];
    private double[] _column = new double[Minute];
    private long[] _counts = [];
    private int _device;

    [GlobalSetup]
    public void Setup()
    {
        var sessions = HaptStreams.TestSessions;
        var profile = HaptStreams.Profile;
        _scorer = new DriftScorer(profile);
        _streams = [.. Enumerable.Range(0, Devices).Select(i => sessions[i % sessions.Length])];
        _ids = [.. Enumerable.Range(0, Devices).Select(i => $"device-{i}")];
        _cursor = new int[Devices];
        _monitor = new DeviceDriftMonitor(profile, new DriftMonitorOptions { MaxDevices = Devices, WindowLength = Minute });

        // The baseline's reference: every training frame per channel, sorted, thinned to 20,000 evenly spaced order
        // statistics (the size of the profile's own sorted sample); PSI's inner edges at its deciles.
        // The profile keeps no raw frames; the baseline's reference is taken from the recordings it was built from.
        float[] training = [.. HaptStreams.TrainingSessions.SelectMany(s => s)];
        _sortedReference = new double[Channels][];
        _edges = new double[Channels][];
        _referenceCounts = new long[Channels][];
        for (var c = 0; c < Channels; c++)
        {
            var all = new double[training.Length / Channels];
            for (var i = 0; i < all.Length; i++)
            {
                all[i] = training[(i * Channels) + c];
            }

            Array.Sort(all);
            var n = Math.Min(20_000, all.Length);
            _sortedReference[c] = [.. Enumerable.Range(0, n).Select(i => all[(int)((long)i * (all.Length - 1) / Math.Max(1, n - 1))])];
            _edges[c] = [.. Enumerable.Range(1, 9).Select(k => _sortedReference[c][k * n / 10])];
            _referenceCounts[c] = new long[10];
            foreach (var v in _sortedReference[c])
            {
                _referenceCounts[c][DriftBenchmarks.UpperBound(_edges[c], v)]++;
            }
        }

        _counts = new long[10];
        for (var i = 0; i < Devices; i++)
        {
            _cursor[i] = (i * 7919 * Stride) % (_streams[i].Length / Channels - Minute);
            Feed(i, Minute);
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _monitor.Dispose();

    [Benchmark(Baseline = true, Description = "per-channel KS (20,000-value sorted reference) + PSI (10 bins), one minute")]
    public double PerChannelKsPsi()
    {
        var minute = NextMinute();
        var worst = 0.0;
        for (var c = 0; c < Channels; c++)
        {
            for (var i = 0; i < Minute; i++)
            {
                _column[i] = minute[(i * Channels) + c];
            }

            Array.Sort(_column);
            var d = KsStatistic(_sortedReference[c], _column);
            Array.Clear(_counts);
            foreach (var v in _column)
            {
                _counts[DriftBenchmarks.UpperBound(_edges[c], v)]++;
            }

            worst = Math.Max(worst, d + Psi(_referenceCounts[c], _counts));
        }

        return worst;
    }

    [Benchmark(Description = "DriftScorer.Score, one minute on its own (every check, no history)")]
    public bool ScoreMinute() => _scorer.Score(NextMinute()).Flagged;

    [Benchmark(Description = "DeviceDriftMonitor: 15 windows fed + ScoreNow (history, alarm), per half minute")]
    public bool ScoreDeviceHalfMinute()
    {
        var d = _device;
        _device = (d + 1) % Devices;
        Feed(d, Half);
        return _monitor.ScoreNow(_ids[d])!.Flagged;
    }

    private void Feed(int d, int frames)
    {
        var stream = _streams[d];
        for (var fed = 0; fed < frames; fed += Stride)
        {
            var start = _cursor[d];
            if ((start + Stride) * Channels > stream.Length)
            {
                start = 0;
            }

            _monitor.Observe(_ids[d], stream.AsSpan(start * Channels, Stride * Channels), 0, predictedClass: 0, confidence: 0.9f, entropy: 0.3f);
            _cursor[d] = start + Stride;
        }
    }

    private ReadOnlySpan<float> NextMinute()
    {
        var d = _device;
        _device = (d + 1) % Devices;
        var stream = _streams[d];
        var start = _cursor[d];
        if ((start + Minute) * Channels > stream.Length)
        {
            start = 0;
        }

        _cursor[d] = start + Half;
        return stream.AsSpan(start * Channels, Minute * Channels);
    }

    /// <summary>Two-sample KS statistic D of two sorted samples (a single merge pass).</summary>
    private static double KsStatistic(double[] a, double[] b)
    {
        int i = 0, j = 0;
        var d = 0.0;
        while (i < a.Length && j < b.Length)
        {
            var v = Math.Min(a[i], b[j]);
            while (i < a.Length && a[i] <= v)
            {
                i++;
            }

            while (j < b.Length && b[j] <= v)
            {
                j++;
            }

            d = Math.Max(d, Math.Abs((i / (double)a.Length) - (j / (double)b.Length)));
        }

        return d;
    }

    private static double Psi(long[] reference, long[] current)
    {
        double nr = reference.Sum(), nc = current.Sum(), psi = 0;
        for (var k = 0; k < reference.Length; k++)
        {
            var p = Math.Max(reference[k] / nr, 1e-4);
            var q = Math.Max(current[k] / nc, 1e-4);
            psi += (q - p) * Math.Log(q / p);
        }

        return psi;
    }
}
