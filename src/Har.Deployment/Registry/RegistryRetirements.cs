using System.Globalization;
using System.Text.Json;
using Har.Audit;

namespace Har.Deployment;

/// <summary>
/// The retired versions, read from the audit log: a version's latest <c>registry.retired</c> or
/// <c>registry.reinstated</c> event decides. Read once through the log's index (entries of other types are not
/// read), then brought up to date with the entries appended since, by this process or by another registry sharing
/// the log (a replica): the log is the only place a retirement is kept, so every registry on it agrees.
/// </summary>
internal sealed class RegistryRetirements(AuditLog log)
{
    internal const string Retired = "registry.retired";
    internal const string Reinstated = "registry.reinstated";

    private readonly Lock _gate = new();
    private readonly Dictionary<string, ModelRetirement> _retired = new(StringComparer.Ordinal);
    private long _count;

    /// <summary>The retirement in force for <paramref name="version"/>, or <see langword="null"/>.</summary>
    public ModelRetirement? Find(string version)
    {
        lock (_gate)
        {
            CatchUp();
            return _retired.GetValueOrDefault(version);
        }
    }

    /// <summary>Every retirement in force, by version.</summary>
    public IReadOnlyDictionary<string, ModelRetirement> All()
    {
        lock (_gate)
        {
            CatchUp();
            return new Dictionary<string, ModelRetirement>(_retired, StringComparer.Ordinal);
        }
    }

    private void CatchUp()
    {
        var count = log.Count;
        if (count < _count)
        {
            // A shorter log than the one read (restored from a backup under this process): read it again.
            _retired.Clear();
            _count = 0;
        }

        if (count == _count)
        {
            return;
        }

        var entries = Events(Retired, _count, count).Concat(Events(Reinstated, _count, count)).OrderBy(static e => e.Index);
        foreach (var entry in entries)
        {
            if (entry.Record is not AuditEvent e || e.ActionDetails.ValueKind != JsonValueKind.Object || Text(e.ActionDetails, "version") is not { } version)
            {
                continue;
            }

            if (e.EventType == Retired)
            {
                _retired[version] = new ModelRetirement(version, Text(e.ActionDetails, "reason") ?? string.Empty, e.Actor, e.Timestamp, entry.Index);
            }
            else
            {
                _retired.Remove(version);
            }
        }

        _count = count;
    }

    private IEnumerable<AuditEntry> Events(string eventType, long from, long count)
    {
        // Page tokens are index cursors: the first page starts at the entry numbered from.
        var token = from > 0 ? from.ToString(CultureInfo.InvariantCulture) : null;
        do
        {
            var page = log.Query(new AuditQuery { EventType = eventType, EntityType = "model", Kind = AuditRecordKind.Event, PageSize = 1000, PageToken = token });
            foreach (var entry in page.Entries)
            {
                if (entry.Index >= count)
                {
                    yield break;
                }

                yield return entry;
            }

            token = page.NextPageToken;
        }
        while (token is not null);
    }

    private static string? Text(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
