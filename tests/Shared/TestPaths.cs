namespace Har.Testing;

/// <summary>
/// Where tests find their inputs: the committed models (copied beside the test assembly), and the
/// shared reference vectors and HAPT data that live beside the repository (<c>../shared</c>), which a
/// user's fresh clone does not have. Tests that need <c>../shared</c> call <see cref="RequireSharedData"/>
/// or <see cref="RequireReference"/>, which skip the test with a message naming the missing folder.
/// </summary>
internal static class TestPaths
{
    private static readonly Lazy<string?> Shared = new(FindShared);

    /// <summary>The folder of the committed models, copied beside the test assembly.</summary>
    public static string Models => Path.Combine(AppContext.BaseDirectory, "models");

    public static string ChampionModel => Path.Combine(Models, "har-cnn-bilstm-1.0.0.onnx");

    /// <summary>The rollout candidate, 1.2.0: it reads the 200 frames before each window (<c>har.context_frames</c>), so a pipeline serving it beside the champion keeps that context (<c>ServingOptions.ContextFrames</c>).</summary>
    public static string CandidateModel => Path.Combine(Models, "har-cnn-bilstm-1.2.0.onnx");

    /// <summary>The previous candidate, 1.1.0: reads single windows like the champion.</summary>
    public static string PlainCandidateModel => Path.Combine(Models, "har-cnn-bilstm-1.1.0.onnx");

    /// <summary>The repository root (the folder holding Har.sln).</summary>
    public static string RepoRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Har.sln")))
                {
                    return dir.FullName;
                }
            }

            throw new InvalidOperationException($"No Har.sln above '{AppContext.BaseDirectory}'.");
        }
    }

    /// <summary>The UCI HAPT folder (<c>../shared/data/uci-hapt</c>), or skips the test.</summary>
    public static string RequireSharedData()
    {
        var dir = Shared.Value is null ? null : Path.Combine(Shared.Value, "data", "uci-hapt");
        if (dir is null || !File.Exists(Path.Combine(dir, "hapt_raw_50hz.csv.gz")))
        {
            Assert.Skip("Skipped: the shared UCI HAPT data (../shared/data/uci-hapt beside the repository, or HAR_SHARED) is not present on this machine.");
        }

        return dir!;
    }

    /// <summary>A file of <c>../shared/reference</c> (read in place, never copied), or skips the test.</summary>
    public static string RequireReference(string fileName)
    {
        var path = Shared.Value is null ? null : Path.Combine(Shared.Value, "reference", fileName);
        if (path is null || !File.Exists(path))
        {
            Assert.Skip($"Skipped: the reference vectors ../shared/reference/{fileName} (beside the repository, or under HAR_SHARED) are not present on this machine.");
        }

        return path!;
    }

    private static string? FindShared()
    {
        var fromEnv = Environment.GetEnvironmentVariable("HAR_SHARED");
        if (!string.IsNullOrEmpty(fromEnv))
        {
            return Directory.Exists(fromEnv) ? fromEnv : null;
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared");
            if (Directory.Exists(Path.Combine(candidate, "reference")) || Directory.Exists(Path.Combine(candidate, "data")))
            {
                return candidate;
            }
        }

        return null;
    }
}
