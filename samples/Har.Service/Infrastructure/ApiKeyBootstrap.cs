using System.Security.Cryptography;
using System.Text.Json;

namespace Har.Service.Infrastructure;

/// <summary>
/// Resolves the API keys: the configured ones, or else <c>{data}/api-keys.json</c>, created on first
/// start with one generated operator+auditor key (file mode 0600) so a fresh <c>dotnet run</c> is usable
/// and never open by accident.
/// </summary>
internal static class ApiKeyBootstrap
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public static List<ApiKeyEntry> Resolve(ServiceOptions options, string dataDirectory, ILogger logger)
    {
        if (options.ApiKeys.Count > 0)
        {
            foreach (var key in options.ApiKeys)
            {
                var unknown = key.Roles.Where(r => !Security.Roles.All.Contains(r)).ToArray();
                if (key.Key.Length < 24 || unknown.Length > 0 || string.IsNullOrWhiteSpace(key.Name))
                {
                    throw new InvalidOperationException($"API key '{key.Name}' is invalid: keys need a name, at least 24 characters and roles among {string.Join(", ", Security.Roles.All)} (unknown: {string.Join(", ", unknown)}).");
                }
            }

            return options.ApiKeys;
        }

        if (!string.IsNullOrEmpty(options.ApiKeysFile))
        {
            return JsonSerializer.Deserialize<List<ApiKeyEntry>>(File.ReadAllText(options.ApiKeysFile), Json)
                ?? throw new InvalidDataException($"'{options.ApiKeysFile}' holds no API keys; expected a JSON array of {{name, key, roles}}.");
        }

        var path = Path.Combine(dataDirectory, "api-keys.json");
        if (File.Exists(path))
        {
            return JsonSerializer.Deserialize<List<ApiKeyEntry>>(File.ReadAllText(path), Json)
                ?? throw new InvalidDataException($"'{path}' holds no API keys; expected a JSON array of {{name, key, roles}}.");
        }

        var generated = new List<ApiKeyEntry>
        {
            new() { Name = "local-admin", Key = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24)), Roles = [Security.Roles.Operator, Security.Roles.Auditor] },
        };
        Directory.CreateDirectory(dataDirectory);
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(generated, Json));
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        File.Move(tmp, path, overwrite: true);
        Log.GeneratedApiKey(logger, path);
        return generated;
    }
}
