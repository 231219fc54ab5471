using System.Security.Cryptography;
using System.Text.Json;
using Har.Service.Security;

namespace Har.Service.Infrastructure;

/// <summary>
/// Resolves the API keys: the configured ones, or else <c>{data}/api-keys.json</c>, created on first
/// start with one generated operator+auditor key (file mode 0600) so a fresh <c>dotnet run</c> is usable
/// and never open by accident.
/// </summary>
internal static class ApiKeyBootstrap
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    /// <param name="options">The service's options.</param>
    /// <param name="dataDirectory">The data folder.</param>
    /// <param name="logger">Where a generated key file is announced.</param>
    /// <param name="generatedFile">The key file generated now, or <see langword="null"/>: a start refused later removes it, so a refusal writes nothing.</param>
    public static List<ApiKeyEntry> Resolve(ServiceOptions options, string dataDirectory, ILogger logger, out string? generatedFile)
    {
        generatedFile = null;
        // One validation for every source: a key is as good from a mounted file as from configuration.
        if (options.ApiKeys.Count > 0)
        {
            ApiKeyValidation.Validate(options.ApiKeys, "configuration (Har:Service:ApiKeys)");
            return options.ApiKeys;
        }

        if (!string.IsNullOrEmpty(options.ApiKeysFile))
        {
            return ReadFile(options.ApiKeysFile, "Har:Service:ApiKeysFile");
        }

        var path = Path.Combine(dataDirectory, "api-keys.json");
        if (File.Exists(path))
        {
            return ReadFile(path, "the key file this service generated in its data folder; delete it to generate a new operator key, which invalidates the keys it held");
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
        generatedFile = path;
        Log.GeneratedApiKey(logger, path);
        return generated;
    }

    private static List<ApiKeyEntry> ReadFile(string path, string setting)
    {
        List<ApiKeyEntry?>? keys;
        try
        {
            keys = JsonSerializer.Deserialize<List<ApiKeyEntry?>>(File.ReadAllText(path), Json);
        }
        catch (JsonException ex)
        {
            // The message names the position, never the content (the file holds secrets).
            throw new InvalidOperationException($"The API key file '{path}' ({setting}) is not valid JSON at line {ex.LineNumber + 1}, byte {ex.BytePositionInLine + 1}; expected a JSON array of {{\"name\", \"key\", \"roles\"}}.", ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"The API key file '{path}' ({setting}) cannot be read ({ex.GetType().Name}); expected a readable JSON array of {{\"name\", \"key\", \"roles\"}}.", ex);
        }

        if (keys is null)
        {
            throw new InvalidOperationException($"The API key file '{path}' ({setting}) holds null; expected a JSON array of {{\"name\", \"key\", \"roles\"}}.");
        }

        ApiKeyValidation.Validate(keys, $"the file '{path}' ({setting})");
        return [.. keys.Select(k => k!)];
    }
}
