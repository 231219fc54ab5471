using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Har.Benchmarks;

/// <summary>
/// Runs the benchmarks: <c>dotnet run -c Release --project benchmarks/Har.Benchmarks -- --filter '*'</c>.
/// Results are committed as Markdown under <c>benchmarks/results/</c> (see benchmarks/README.md).
/// <c>-- paired-windowing [iterations]</c> runs the paired measurement of the windowing ratio instead
/// (<see cref="Inference.PairedWindowingRatio"/>). <c>-- pg-append &lt;connection string&gt; …</c> measures audit appends
/// through PostgreSQL, group commit vs one transaction per record (<see cref="Audit.PostgresAppendRunner"/>);
/// <c>-- fleet-append …</c> the same from separate processes and <c>-- fleet-control …</c> the fleet's state propagation
/// and leader failover with real replica processes (<see cref="Fleet.FleetAppendRunner"/>, <see cref="Fleet.FleetControlRunner"/>).
/// </summary>
internal static class Program
{
    public static void Main(string[] args)
    {
        if (args is ["paired-windowing", ..])
        {
            var iterations = 20_000;
            if (args.Length > 1 && (!int.TryParse(args[1], System.Globalization.CultureInfo.InvariantCulture, out iterations) || iterations < 10))
            {
                Console.Error.WriteLine($"paired-windowing: '{args[1]}' is not a valid iteration count; expected a whole number of at least 10 (default 20000).");
                Environment.Exit(2);
            }

            Inference.PairedWindowingRatio.Run(iterations);
            return;
        }

        if (args is ["pg-append", ..])
        {
            Environment.Exit(Audit.PostgresAppendRunner.Run(args));
        }

        // The fleet runners and their worker processes (benchmarks/results/Fleet/run-fleet.sh).
        switch (args)
        {
            case ["fleet-append", ..]:
                Environment.Exit(Fleet.FleetAppendRunner.Run(args));
                break;
            case ["fleet-append-worker", _, _, _, _, _, _]:
                Environment.Exit(Fleet.FleetAppendRunner.Worker(args));
                break;
            case ["fleet-control", ..]:
                Environment.Exit(Fleet.FleetControlRunner.Run(args));
                break;
            case ["drift-store", ..]:
                Environment.Exit(Fleet.DriftStoreRunner.Run(args));
                break;
            case ["fleet-replica", _, _, _, _]:
                Environment.Exit(Fleet.FleetControlRunner.Replica(args));
                break;
        }

        // Parameter columns wide enough for the model file names (both committed models are 25 characters long and
        // start alike: at the default width of 20 both read "har-c(...).onnx [25]").
        var config = DefaultConfig.Instance.WithSummaryStyle(SummaryStyle.Default.WithMaxParameterColumnWidth(40));
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
    }
}
