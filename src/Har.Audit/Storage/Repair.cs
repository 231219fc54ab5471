using System.Text.Json;

namespace Har.Audit.Storage;

/// <summary>An operator's decision to remove damaged entries (see <see cref="AuditLog.Repair"/>), and what it removed.</summary>
internal sealed class RepairRequest(string actor, string reason)
{
    public string Actor { get; } = actor;

    public string Reason { get; } = reason;

    public RepairOutcome? Removed { get; set; }
}

/// <summary>What a repair removed; written as <c>quarantine/repair-*.json</c> and as the repair event's details.</summary>
internal sealed record RepairOutcome(
    long FirstIndex,
    long Offset,
    long Bytes,
    long EntriesRemoved,
    string Problem,
    string DataFile,
    string DataSha256,
    long? CheckpointSize,
    string? ArchivedCheckpoint)
{
    public SortedDictionary<string, object?> ToJson(RepairRequest repair, string? time)
    {
        var json = new SortedDictionary<string, object?>(StringComparer.Ordinal)
        {
            ["actor"] = repair.Actor,
            ["reason"] = repair.Reason,
            ["problem"] = Problem,
            ["removed_from_index"] = FirstIndex,
            ["removed_from_offset"] = Offset,
            ["removed_bytes"] = Bytes,
            ["entries_removed_at_least"] = EntriesRemoved,
            ["quarantine_file"] = DataFile,
            ["quarantine_sha256"] = DataSha256,
            ["checkpoint_size"] = CheckpointSize,
            ["archived_checkpoint"] = ArchivedCheckpoint,
        };
        if (time is not null)
        {
            json["time"] = time;
        }

        return json;
    }
}

/// <summary>The repairs recorded in a log's <c>quarantine/</c> folder (their manifests).</summary>
internal readonly record struct QuarantineSummary(int Repairs, long EntriesRemoved, string? Latest)
{
    public static QuarantineSummary Read(string directory)
    {
        var dir = Path.Combine(directory, AuditLog.QuarantineDirectory);
        if (!Directory.Exists(dir))
        {
            return default;
        }

        var repairs = 0;
        long entries = 0;
        string? latest = null;
        foreach (var file in Directory.EnumerateFiles(dir, "repair-*.json"))
        {
            repairs++;
            latest = latest is null || string.CompareOrdinal(file, latest) > 0 ? file : latest;
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
                if (doc.RootElement.TryGetProperty("entries_removed_at_least", out var n) && n.TryGetInt64(out var count))
                {
                    entries += count;
                }
            }
            catch (JsonException)
            {
                // an unreadable manifest still counts as a repair
            }
        }

        return new QuarantineSummary(repairs, entries, latest is null ? null : Path.GetFileName(latest));
    }
}
