using Har.Inference.Data;

namespace Har.Cli;

/// <summary>Finds the shared UCI HAPT data when the user does not name it.</summary>
internal static class SharedData
{
    /// <summary>
    /// The HAPT folder: <c>$HAR_SHARED/data/uci-hapt</c> if that variable is set, otherwise the first
    /// <c>../shared/data/uci-hapt</c> found walking up from the current directory and from the
    /// executable's directory; <see langword="null"/> when there is none.
    /// </summary>
    public static string? FindHapt()
    {
        var fromEnv = Environment.GetEnvironmentVariable("HAR_SHARED");
        if (!string.IsNullOrEmpty(fromEnv))
        {
            var dir = Path.Combine(fromEnv, "data", "uci-hapt");
            return File.Exists(Path.Combine(dir, SensorDataset.SamplesFile)) ? Path.GetFullPath(dir) : null;
        }

        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "shared", "data", "uci-hapt");
                if (File.Exists(Path.Combine(candidate, "hapt_raw_50hz.csv.gz")))
                {
                    return candidate;
                }
            }
        }

        return null;
    }
}
