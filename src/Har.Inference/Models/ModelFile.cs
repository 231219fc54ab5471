namespace Har.Inference;

/// <summary>Checks a model path before ONNX Runtime reads it, so a wrong path says what was wrong and where it looked.</summary>
internal static class ModelFile
{
    /// <summary>Throws <see cref="FileNotFoundException"/> when <paramref name="modelPath"/> is not an existing file.</summary>
    public static void EnsureExists(string modelPath)
    {
        if (File.Exists(modelPath))
        {
            return;
        }

        var full = Path.GetFullPath(modelPath);
        var where = Path.IsPathFullyQualified(modelPath) ? string.Empty : $" (looked for '{full}': a relative path is read from the working directory)";
        throw new FileNotFoundException(
            Directory.Exists(modelPath)
                ? $"Model path '{modelPath}' is a folder{where}; expected an .onnx file, such as models/har-cnn-bilstm-1.0.0.onnx of the repository."
                : $"Model file '{modelPath}' does not exist{where}; expected an .onnx file with a Har model card.",
            modelPath);
    }
}
