namespace Har.Inference;

/// <summary>
/// A model added with <c>AddHarInference().AddModel(name, path)</c>, registered as a service beside its keyed
/// <see cref="HarModel"/> singleton: the key and the file. Other components that need the same file (Har.Deployment's
/// serving pipeline does) resolve the keyed model instead of loading the file a second time.
/// </summary>
public sealed class HarModelRegistration
{
    internal HarModelRegistration(string name, string modelPath)
    {
        Name = name;
        ModelPath = modelPath;
    }

    /// <summary>Gets the model's service key (the name given to <c>AddModel</c>).</summary>
    public string Name { get; }

    /// <summary>Gets the full path of the model's <c>.onnx</c> file.</summary>
    public string ModelPath { get; }
}
