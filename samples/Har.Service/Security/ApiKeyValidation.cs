namespace Har.Service.Security;

/// <summary>
/// The one validation of API keys, wherever they come from (configuration, <c>ApiKeysFile</c>, the generated
/// <c>api-keys.json</c>): a name, a key of at least <see cref="MinimumKeyLength"/> characters, at least one role,
/// only known roles, and no key or name given twice. Messages name the entry and its source, never the secret.
/// </summary>
internal static class ApiKeyValidation
{
    public const int MinimumKeyLength = 24;
    public const int MaximumNameLength = 128;

    /// <summary>Throws <see cref="InvalidOperationException"/> listing every problem of every entry.</summary>
    public static void Validate(IReadOnlyList<ApiKeyEntry?> keys, string source)
    {
        var problems = Problems(keys);
        if (problems.Count > 0)
        {
            throw new InvalidOperationException(
                $"The API keys from {source} are invalid: {string.Join("; ", problems)}. "
                + $"Each key needs a name (1 to {MaximumNameLength} characters), a key of at least {MinimumKeyLength} characters and at least one role among {string.Join(", ", Roles.All)}.");
        }
    }

    /// <summary>Every problem found, one line per problem, naming the entry by position and name.</summary>
    public static List<string> Problems(IReadOnlyList<ApiKeyEntry?> keys)
    {
        var problems = new List<string>();
        if (keys.Count == 0)
        {
            problems.Add("there are no keys");
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        var secrets = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < keys.Count; i++)
        {
            var key = keys[i];
            if (key is null)
            {
                problems.Add($"entry {i} is null");
                continue;
            }

            var label = $"entry {i} ('{Shorten(key.Name)}')";
            if (string.IsNullOrWhiteSpace(key.Name))
            {
                problems.Add($"entry {i} has no name");
            }
            else if (key.Name.Length > MaximumNameLength || key.Name.Any(char.IsControl) || key.Name != key.Name.Trim())
            {
                problems.Add($"{label} has a name longer than {MaximumNameLength} characters, with control characters or surrounding spaces");
            }
            else if (!names.Add(key.Name))
            {
                problems.Add($"{label} repeats the name of an earlier entry");
            }

            if (key.Key is null || key.Key.Length < MinimumKeyLength)
            {
                problems.Add($"{label} has a key of {key.Key?.Length ?? 0} characters; at least {MinimumKeyLength} are required");
            }
            else if (key.Key != key.Key.Trim() || key.Key.Any(char.IsControl))
            {
                problems.Add($"{label} has a key with surrounding spaces or control characters");
            }
            else if (!secrets.Add(key.Key))
            {
                problems.Add($"{label} repeats the key of an earlier entry");
            }

            if (key.Roles is null || key.Roles.Count == 0)
            {
                problems.Add($"{label} has no role");
            }
            else
            {
                var unknown = key.Roles.Where(r => !Roles.All.Contains(r, StringComparer.Ordinal)).ToArray();
                if (unknown.Length > 0)
                {
                    problems.Add($"{label} has unknown role(s) {string.Join(", ", unknown.Select(r => $"'{Shorten(r)}'"))}");
                }
            }
        }

        return problems;
    }

    private static string Shorten(string? value) => value is null ? "" : value.Length <= 40 ? value : value[..40] + "…";
}
