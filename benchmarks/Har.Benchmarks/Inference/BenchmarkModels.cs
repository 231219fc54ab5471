namespace Har.Benchmarks.Inference;

/// <summary>Finds the model the inference benchmarks run: the committed champion, else the tiny test fixture.</summary>
internal static class BenchmarkModels
{
    public const string Champion = "har-cnn-bilstm-1.0.0.onnx";
    public const string Fixture = "tiny-probs-1.0.0.onnx";

    /// <summary>The champion when it was built into models/, otherwise the fixture (so the benchmarks run before the models exist).</summary>
    public static IEnumerable<string> Available()
    {
        yield return File.Exists(Path.Combine(AppContext.BaseDirectory, "models", Champion)) ? Champion : Fixture;
    }

    public static string PathOf(string name)
    {
        var beside = Path.Combine(AppContext.BaseDirectory, "models", name);
        if (File.Exists(beside))
        {
            return beside;
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var fixture = Path.Combine(dir.FullName, "tests", "Har.Inference.Tests", "Fixtures", name);
            if (File.Exists(fixture))
            {
                return fixture;
            }
        }

        throw new FileNotFoundException($"Benchmark model '{name}' not found beside the executable or under tests/Har.Inference.Tests/Fixtures.");
    }
}
