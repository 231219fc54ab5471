using System.Text;

namespace Har.Cli.Tests;

/// <summary>Model folders for the demo tests.</summary>
internal static class DemoFixtures
{
    public static string FixtureModel(string file) => Path.Combine(AppContext.BaseDirectory, "Fixtures", file);

    /// <summary>
    /// A folder with the tiny fixture champion (1.0.0) and a candidate 1.1.0 that is the same network: the
    /// card's version string is rewritten in place (same length, so the protobuf stays valid). A healthy
    /// candidate that agrees with its champion must be promoted; the fixtures' two different random networks
    /// would (rightly) fail the smoke test.
    /// </summary>
    public static string SameWeightsPair()
    {
        var dir = Directory.CreateTempSubdirectory("har-cli-tests-models-").FullName;
        var bytes = File.ReadAllBytes(FixtureModel("tiny-probs-1.0.0.onnx"));
        File.WriteAllBytes(Path.Combine(dir, "tiny-probs-1.0.0.onnx"), bytes);
        var key = Encoding.ASCII.GetBytes("har.model_version\u0012\u00051.0.0");
        var at = bytes.AsSpan().IndexOf(key);
        Assert.True(at >= 0, "the fixture's card holds har.model_version = 1.0.0");
        Assert.Equal(-1, bytes.AsSpan(at + 1).IndexOf(key));
        var candidate = (byte[])bytes.Clone();
        Encoding.ASCII.GetBytes("1.1.0").CopyTo(candidate, at + key.Length - 5);
        File.WriteAllBytes(Path.Combine(dir, "tiny-probs-1.1.0.onnx"), candidate);
        return dir;
    }

    /// <summary>The committed bundled models when they are present (built beside the tests), else the same-weights fixture pair.</summary>
    public static (string Champion, string Candidate, bool Bundled) Models()
    {
        if (File.Exists(TestPaths.ChampionModel) && File.Exists(TestPaths.CandidateModel))
        {
            return (TestPaths.ChampionModel, TestPaths.CandidateModel, true);
        }

        var dir = SameWeightsPair();
        return (Path.Combine(dir, "tiny-probs-1.0.0.onnx"), Path.Combine(dir, "tiny-probs-1.1.0.onnx"), false);
    }
}
