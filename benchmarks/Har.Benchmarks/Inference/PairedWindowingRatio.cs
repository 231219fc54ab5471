using System.Diagnostics;
using System.Globalization;
using System.Text;
using Har.Inference;

namespace Har.Benchmarks.Inference;

/// <summary>
/// The windowing target of <see cref="WindowingBenchmarks"/> measured as a paired design: every iteration times
/// the plain copy and then the windowing + normalization of the same 20 000 frames back to back, and the ratio is
/// taken per iteration. On a shared VM the machine's speed drifts for seconds at a time (a neighbour's load, the
/// host's clock), which moves BenchmarkDotNet's per-method blocks of iterations apart; a drift that lasts longer
/// than one iteration (≈ 50 µs) hits both sides of a pair alike and cancels in its ratio.
/// </summary>
/// <remarks>
/// Run: <c>dotnet run -c Release --project benchmarks/Har.Benchmarks -- paired-windowing [iterations]</c>. Prints
/// a Markdown table: per chunk size and append path, the quantiles of the per-iteration time ratio
/// (windowing / copy) and the throughput ratio they imply, and both sides' minimum and median times.
/// </remarks>
internal static class PairedWindowingRatio
{
    private const int L = 200;
    private const int S = 100;
    private const int C = 6;
    private const int StreamFrames = 20_000;
    private const int BatchWindows = 32;

    public static void Run(int iterations)
    {
        var stream = WindowingBenchmarks.NewStream();
        var tensor = GC.AllocateUninitializedArray<float>(BatchWindows * L * C, pinned: true);
        var normalizer = WindowingBenchmarks.NewNormalizer();
        var report = new StringBuilder();
        report.AppendLine(CultureInfo.InvariantCulture, $"Paired windowing ratio: {iterations} iterations per row, each timing `SpanCopyTo` and then the windowing of the same 20 000 frames (200 windows of 200 × 6) back to back; {Environment.ProcessorCount} logical cores, .NET {Environment.Version}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC.");
        report.AppendLine();
        report.AppendLine("| chunk (frames) | path | time ratio p10 | p50 | p90 | throughput vs copy (p50) | copy min / median (µs) | windowing min / median (µs) |");
        report.AppendLine("|---:|---|---:|---:|---:|---:|---:|---:|");
        foreach (var chunk in new[] { 50, 137, 1000 })
        {
            foreach (var byId in new[] { false, true })
            {
                var windower = new StreamWindower(L, S, C);
                var handle = windower.OpenStream("device");
                int Window()
                {
                    var emitted = 0;
                    for (var offset = 0; offset < StreamFrames; offset += chunk)
                    {
                        var frames = stream.AsSpan(offset * C, Math.Min(chunk, StreamFrames - offset) * C);
                        var windows = byId ? windower.Append("device", frames) : handle.Append(frames);
                        for (var w = 0; w < windows.Count; w++, emitted++)
                        {
                            normalizer.NormalizeUnchecked(windows[w], tensor.AsSpan((emitted % BatchWindows) * L * C, L * C));
                        }
                    }

                    return emitted;
                }

                var (ratios, copy, window) = Measure(() => WindowingBenchmarks.CopyWindows(stream, tensor), Window, iterations);
                var p50 = Quantile(ratios, 0.5);
                report.AppendLine(CultureInfo.InvariantCulture, $"| {chunk} | {(byId ? "by id" : "stream handle")} | {Quantile(ratios, 0.1):0.000} | {p50:0.000} | {Quantile(ratios, 0.9):0.000} | {1 / p50:0.000}× | {copy[0]:0.0} / {Quantile(copy, 0.5):0.0} | {window[0]:0.0} / {Quantile(window, 0.5):0.0} |");
            }
        }

        Console.WriteLine(report.ToString());
    }

    private static (double[] Ratios, double[] Copy, double[] Window) Measure(Func<int> copy, Func<int> window, int iterations)
    {
        // Warm-up (tiered JIT, caches), then the pairs.
        for (var i = 0; i < 2000; i++)
        {
            copy();
            window();
        }

        var ratios = new double[iterations];
        var copyTimes = new double[iterations];
        var windowTimes = new double[iterations];
        var toMicroseconds = 1e6 / Stopwatch.Frequency;
        for (var i = 0; i < iterations; i++)
        {
            var t0 = Stopwatch.GetTimestamp();
            copy();
            var t1 = Stopwatch.GetTimestamp();
            window();
            var t2 = Stopwatch.GetTimestamp();
            copyTimes[i] = (t1 - t0) * toMicroseconds;
            windowTimes[i] = (t2 - t1) * toMicroseconds;
            ratios[i] = (double)(t2 - t1) / (t1 - t0);
        }

        Array.Sort(ratios);
        Array.Sort(copyTimes);
        Array.Sort(windowTimes);
        return (ratios, copyTimes, windowTimes);
    }

    private static double Quantile(double[] sorted, double q) => sorted[(int)Math.Round(q * (sorted.Length - 1))];
}
