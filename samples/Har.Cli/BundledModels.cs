namespace Har.Cli;

/// <summary>The sample models shipped beside the executable (copied from the repository's models/ folder).</summary>
internal static class BundledModels
{
    /// <summary>The champion: the 1D-CNN + BiLSTM, version 1.0.0.</summary>
    public const string ChampionFile = "har-cnn-bilstm-1.0.0.onnx";

    /// <summary>
    /// The rollout candidate: the 1D-CNN + BiLSTM that also reads the 4 s before each window (<c>har.context_frames</c> 200),
    /// version 1.2.0 (more accurate than the champion on the HAPT test subjects). Pipelines that serve it beside the
    /// champion keep that context (<see cref="Har.Deployment.ServingOptions.ContextFrames"/>).
    /// </summary>
    public const string CandidateFile = "har-cnn-bilstm-1.2.0.onnx";

    /// <summary>The bundled candidate's version.</summary>
    public const string CandidateVersion = "1.2.0";

    public static string Directory => Path.Combine(AppContext.BaseDirectory, "models");

    public static string Champion => Resolve(ChampionFile);

    public static string Candidate => Resolve(CandidateFile);

    private static string Resolve(string file)
    {
        var path = Path.Combine(Directory, file);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"The bundled model '{file}' is not beside the executable (looked in '{Directory}'); rebuild the CLI so models/*.onnx are copied.", path);
        }

        return path;
    }
}
