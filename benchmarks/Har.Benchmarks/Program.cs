using BenchmarkDotNet.Running;

namespace Har.Benchmarks;

/// <summary>
/// Runs the benchmarks: <c>dotnet run -c Release --project benchmarks/Har.Benchmarks -- --filter '*'</c>.
/// Results are committed as Markdown under <c>benchmarks/results/</c> (see benchmarks/README.md).
/// <c>-- paired-windowing [iterations]</c> runs the paired measurement of the windowing ratio instead
/// (<see cref="Inference.PairedWindowingRatio"/>).
/// </summary>
internal static class Program
{
    public static void Main(string[] args)
    {
        if (args is ["paired-windowing", ..])
        {
            var iterations = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 20_000;
            if (iterations < 10)
            {
                throw new ArgumentOutOfRangeException(nameof(args), iterations, "paired-windowing: expected at least 10 iterations.");
            }

            Inference.PairedWindowingRatio.Run(iterations);
            return;
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
