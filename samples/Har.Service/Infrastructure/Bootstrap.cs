using Har.Audit;
using Har.Deployment;

namespace Har.Service.Infrastructure;

/// <summary>First-start defaults: a checkpoint signing key, and the bundled models in the registry.</summary>
internal static class Bootstrap
{
    public const string Origin = "har.local/har-service";

    /// <summary>The signing key file (outside the log directory), generated once.</summary>
    public static string EnsureSigningKey(string dataDirectory)
    {
        var keys = Path.Combine(dataDirectory, "keys");
        var path = Path.Combine(keys, "audit.key");
        if (!File.Exists(path))
        {
            Directory.CreateDirectory(keys);
            using var key = AuditSigningKey.Generate(Origin);
            key.Save(path);
            File.WriteAllText(Path.Combine(keys, "audit.vkey"), key.VerifierKey + "\n");
        }

        return path;
    }

    /// <summary>Registers the bundled models when the registry is empty: the first (1.0.0) becomes current.</summary>
    public static void SeedRegistry(ModelRegistry registry, string modelsDirectory)
    {
        if (registry.List().Count > 0 || !Directory.Exists(modelsDirectory))
        {
            return;
        }

        // Oldest version first, so the first registered (and current) model is the champion.
        var files = Directory.GetFiles(modelsDirectory, "*.onnx")
            .Select(f => (File: f, Version: Version.Parse(Har.Inference.ModelCard.Load(f).ModelVersion.Split('-', '+')[0])))
            .OrderBy(x => x.Version)
            .Select(x => x.File);
        foreach (var file in files)
        {
            registry.Register(file, new ModelRegistrationOptions
            {
                Deployer = "har-service",
                Method = "bundled with the service",
                MakeCurrentIfNone = true,
            });
        }
    }
}
