using Har.Audit;
using Har.Deployment;

namespace Har.Service.Infrastructure;

/// <summary>First-start defaults: a checkpoint signing key, and the bundled models in the registry.</summary>
internal static class Bootstrap
{
    public const string Origin = "har.local/har-service";

    /// <summary>The signing key file (outside the log directory), generated once, even when replicas sharing the volume start together.</summary>
    public static string EnsureSigningKey(string dataDirectory)
    {
        var keys = Path.Combine(dataDirectory, "keys");
        var path = Path.Combine(keys, "audit.key");
        if (!File.Exists(path))
        {
            Directory.CreateDirectory(keys);
            var temp = Path.Combine(keys, $".audit.key.{Guid.NewGuid():N}.tmp");
            using (var key = AuditSigningKey.Generate(Origin))
            {
                key.Save(temp);
            }

            // Published without overwriting (link, then unlink): the first replica's key wins and the others use it.
            try
            {
                File.Move(temp, path, overwrite: false);
            }
            catch (IOException) when (File.Exists(path))
            {
                File.Delete(temp);
            }
        }

        var verifier = Path.Combine(keys, "audit.vkey");
        if (!File.Exists(verifier))
        {
            using var key = AuditSigningKey.Load(path);
            var temp = Path.Combine(keys, $".audit.vkey.{Guid.NewGuid():N}.tmp");
            File.WriteAllText(temp, key.VerifierKey + "\n");
            File.Move(temp, verifier, overwrite: true);
        }

        return path;
    }

    /// <summary>
    /// Registers the bundled models (oldest first, so 1.0.0 becomes current in an empty registry) and
    /// re-verifies the registry every 15 minutes. Seeding is safe when replicas start together on one volume:
    /// they take turns, and each anchors the versions another registered in its own audit log.
    /// </summary>
    public static void SeedRegistry(ModelRegistry registry, string modelsDirectory)
    {
        if (Directory.Exists(modelsDirectory))
        {
            registry.Seed(Directory.GetFiles(modelsDirectory, "*.onnx"), new ModelRegistrationOptions
            {
                Deployer = "har-service",
                Method = "bundled with the service",
                MakeCurrentIfNone = true,
            });
        }

        registry.StartPeriodicVerification(TimeSpan.FromMinutes(15));
    }
}
