namespace Har.Benchmarks.Inference;

/// <summary>Finds the models the inference benchmarks run: the committed models, else the tiny test fixture.</summary>
internal static class BenchmarkModels
{
    public const string Champion = "har-cnn-bilstm-1.0.0.onnx";
    public const string Candidate = "har-cnn-bilstm-1.2.0.onnx";
    public const string PlainCandidate = "har-cnn-bilstm-1.1.0.onnx";
    public const string Fixture = "tiny-probs-1.0.0.onnx";

    /// <summary>The committed models copied into models/ beside the benchmarks (champion, the previous candidate 1.1.0, then the candidate 1.2.0, which also reads the 200 frames before each window), or the fixture when there is none (so the benchmarks run before the models exist).</summary>
    public static IEnumerable<string> Available()
    {
        var any = false;
        foreach (var name in new[] { Champion, PlainCandidate, Candidate })
        {
            if (File.Exists(Path.Combine(AppContext.BaseDirectory, "models", name)))
            {
                any = true;
                yield return name;
            }
        }

        if (!any)
        {
            yield return Fixture;
        }
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
