using BenchmarkDotNet.Running;

namespace Har.Benchmarks;

/// <summary>
/// Runs the benchmarks: <c>dotnet run -c Release --project benchmarks/Har.Benchmarks -- --filter '*'</c>.
/// Results are committed as Markdown under <c>benchmarks/results/</c> (see benchmarks/README.md).
/// </summary>
internal static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
