using Har.Inference;
using Microsoft.Extensions.DependencyInjection;

namespace Har.Deployment;

/// <summary>Models the host already has resident, to serve instead of loading the same bytes again.</summary>
internal interface ISharedModels
{
    /// <summary>A loaded model whose file holds exactly the bytes with SHA-256 <paramref name="sha256"/>, or <see langword="null"/>.</summary>
    HarModel? Find(string sha256);
}

/// <summary>
/// The keyed <see cref="HarModel"/> singletons of <c>AddHarInference().AddModel(name, path)</c>: a registry version whose
/// SHA-256 is that of a registered file is served from the keyed instance (resolving it loads it once, for both). The file
/// is hashed before the model is resolved (so no unrelated model is loaded) and again after, so a file replaced in between
/// is not taken for the registered version.
/// </summary>
internal sealed class SharedHarModels(IServiceProvider services, HarModelRegistration[] registrations) : ISharedModels
{
    public HarModel? Find(string sha256)
    {
        foreach (var registration in registrations)
        {
            if (!File.Exists(registration.ModelPath) || !Same(HarModelHost.HashFile(registration.ModelPath), sha256))
            {
                continue;
            }

            var model = services.GetRequiredKeyedService<HarModel>(registration.Name);
            if (Same(HarModelHost.HashFile(model.ModelPath), sha256))
            {
                return model;
            }
        }

        return null;
    }

    private static bool Same(string a, string b) => string.Equals(a, b, StringComparison.OrdinalIgnoreCase);
}
