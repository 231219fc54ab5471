using BenchmarkDotNet.Attributes;
using Har.Drift;

namespace Har.Benchmarks.Drift;

/// <summary>
/// The cost of the per-device drift state file (<see cref="DriftMonitorOptions.StatePath"/>): the checkpoint a
/// <see cref="DeviceDriftMonitor"/> writes at the end of every scoring tick (temp file, fsync, rename, directory fsync)
/// and the restore at construction, for 1,000 devices (the default MaxDevices) and 10,000, every history at its caps
/// (512 still-to-still turns, 64 still blocks in each of the 6 gravity directions, 900 block directions and 60 windows
/// of the device's own minutes, the alarm's CUSUMs and a real latest report). The floors: writing (and fsyncing) and
/// reading the same number of bytes.
/// </summary>
[MemoryDiagnoser]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "BenchmarkDotNet disposes in [GlobalCleanup].")]
public class DriftStateBenchmarks
{
    private DeviceDriftMonitor _monitor = null!;
    private string _folder = null!;
    private string _state = null!;
    private byte[] _chunk = null!;
    private long _bytes;

    [Params(1_000, 10_000)]
    public int Devices { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _folder = Directory.CreateTempSubdirectory("har-bench-drift-state-").FullName;
        _state = Path.Combine(_folder, "drift-state.bin");
        _monitor = new DeviceDriftMonitor(HaptStreams.Profile, Options(Devices));
        var session = HaptStreams.TestSessions[0];
        for (var d = 0; d < Devices; d++)
        {
            var id = FormattableString.Invariant($"device-{d:D5}");
            _monitor.Observe(id, session.AsSpan(d % 50 * 600, 200 * 6), 0, 0, 0.9f, 0.3f);
            _monitor.ScoreNow(id);
            Fill(_monitor.HistoryOf(id)!, d);
        }

        DurableFile.WriteAtomic(_state, s => _monitor.SaveState(s));
        _bytes = new FileInfo(_state).Length;
        _chunk = new byte[1 << 16];
        Random.Shared.NextBytes(_chunk);
        Console.WriteLine(FormattableString.Invariant($"// drift state: {Devices} devices, {_bytes / 1e6:F1} MB ({_bytes / Devices / 1e3:F0} KB per device)"));
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _monitor.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    /// <summary>The floor of a checkpoint: the same bytes written to a temp file, fsynced, renamed, directory fsynced.</summary>
    [Benchmark(Baseline = true)]
    public void WriteSameBytes() => DurableFile.WriteAtomic(Path.Combine(_folder, "floor.bin"), stream =>
    {
        for (var left = _bytes; left > 0; left -= _chunk.Length)
        {
            stream.Write(_chunk, 0, (int)Math.Min(left, _chunk.Length));
        }
    });

    /// <summary>The checkpoint at the end of a scoring tick.</summary>
    [Benchmark]
    public int Checkpoint()
    {
        var saved = 0;
        DurableFile.WriteAtomic(_state, stream => saved = _monitor.SaveState(stream));
        return saved;
    }

    /// <summary>The floor of a restore: the file's bytes read.</summary>
    [Benchmark]
    public long ReadSameBytes()
    {
        using var file = new FileStream(_state, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        var buffer = new byte[1 << 16];
        long total = 0;
        for (int n; (n = file.Read(buffer)) > 0;)
        {
            total += n;
        }

        return total;
    }

    /// <summary>The restore at construction: a new monitor loading the file (every device's state, its frame ring allocated).</summary>
    [Benchmark]
    public int Restore()
    {
        using var monitor = new DeviceDriftMonitor(HaptStreams.Profile, Options(Devices));
        using var file = new FileStream(_state, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        return monitor.LoadState(file).Restored;
    }

    private static DriftMonitorOptions Options(int devices) => new()
    {
        MaxDevices = devices,
        MetricsRegistry = Prometheus.Metrics.NewCustomRegistry(),
        MonitorName = "bench",
    };

    /// <summary>Fills a history to its caps with plausible values (varied per device, so nothing compresses or repeats).</summary>
    internal static void Fill(DeviceHistory history, int seed)
    {
        var rng = new Random(seed);
        double[] V(int n) => [.. Enumerable.Range(0, n).Select(_ => rng.NextDouble())];
        var start = history.FramesSeen + 1;
        var pairs = Enumerable.Range(0, DeviceHistory.MaxRotationPairs).Select(i => new RotationPair(i * 100, (i * 100) + 60, V(13), V(13))
        {
            Turn = V(9),
            From = V(3),
            To = V(3),
            Quiet = i % 3 == 0,
        }).ToList();
        var blocks = new List<StillBlock>();
        for (var k = 0; k < 6; k++)
        {
            for (var i = 0; i < DeviceHistory.MaxStillBlocksPerDirection; i++)
            {
                var mean = V(3);
                mean[k / 2] = k % 2 == 0 ? 9.8 : -9.8;
                blocks.Add(new StillBlock((k * 10_000) + (i * 100), mean));
            }
        }

        history.Commit(start, start + 60_000, pairs, blocks);

        // The device's own minutes: 900 block directions in one window, then 59 more windows without blocks.
        var end = start + 60_000 + 90_000;
        List<(long, double[], bool)> directions = [.. Enumerable.Range(0, SelfBaseline.MaxBlocks).Select(i => ((long)i * 100, V(3), i % 2 == 0))];
        history.Self.CompareAndCommit(new SelfFeatures(V(6), V(3), 15, 1.8, 1, 1, directions), start + 60_000, end);
        for (var w = 1; w < SelfBaseline.MaxWindows; w++)
        {
            history.Self.CompareAndCommit(new SelfFeatures(V(6), V(3), 15, 1.8, 1, 1, []), end + ((w - 1) * 1500), end + (w * 1500));
        }

        history.Alarm.Update([new("Rotation", 1.2), new("FrameStep", 0.7), new("ax/NoiseFloor", 0.9)], _ => 6.75);
    }
}
