using System.Text.Json;
using Har.Audit;

namespace Har.Deployment;

/// <summary>What the audit log says a version is: the hashes of its three files when it was registered (or adopted).</summary>
/// <param name="Version">The version.</param>
/// <param name="Sha256">The SHA-256 of <c>model.onnx</c>.</param>
/// <param name="ConfigSha256">The SHA-256 of <c>config.json</c>'s bytes, or <see langword="null"/> for an entry written before these hashes were recorded.</param>
/// <param name="RecordSha256">The SHA-256 of <c>deployment_record.json</c>'s bytes, or <see langword="null"/> likewise.</param>
/// <param name="Index">The audit entry's index, or -1 when it is not known yet.</param>
/// <param name="RegistryId">The identity of the registry folder that appended it (several registries — replicas — may share one log), or <see langword="null"/> for entries written before registries had one.</param>
/// <param name="EntityId">The audit entry's entity (<c>name@version</c>) when read from the log.</param>
internal sealed record ModelAnchor(string Version, string Sha256, string? ConfigSha256, string? RecordSha256, long Index, string? RegistryId = null, string? EntityId = null);

/// <summary>
/// The registry's trust anchors, read from the audit log: the <c>registry.registered</c> and
/// <c>registry.adopted</c> events of each version, unless a later <c>registry.registration_failed</c>
/// withdrew them. A version may hold several: replicas that share one audit log (PostgreSQL) each register
/// or adopt the same model into their own folder, with their own deployment record, so a folder is vouched
/// for by the registration whose record it holds — the model's SHA-256 is the same in all of them (versions
/// are immutable). Read once (one scan of the log's index) and then kept up to date by this registry's own
/// appends.
/// </summary>
internal sealed class RegistryAnchors(AuditLog log)
{
    internal const string Registered = "registry.registered";
    internal const string Adopted = "registry.adopted";
    internal const string RegistrationFailed = "registry.registration_failed";

    private readonly Lock _gate = new();
    private Dictionary<string, List<ModelAnchor>>? _anchors;

    /// <summary>Gets the audit log's directory name (for messages).</summary>
    public string LogName => Path.GetFileName(log.Directory);

    /// <summary>The latest registration of <paramref name="version"/>, or <see langword="null"/>.</summary>
    public ModelAnchor? Find(string version) => Find(version, recordSha256: null);

    /// <summary>
    /// The latest registration of <paramref name="version"/> whose deployment record has <paramref name="recordSha256"/>;
    /// without one (or with <see langword="null"/>), the latest registration, or <see langword="null"/> when there is none.
    /// </summary>
    public ModelAnchor? Find(string version, string? recordSha256)
    {
        lock (_gate)
        {
            _anchors ??= Load();
            if (!_anchors.TryGetValue(version, out var list) || list.Count == 0)
            {
                return null;
            }

            if (recordSha256 is not null)
            {
                for (var i = list.Count - 1; i >= 0; i--)
                {
                    if (string.Equals(list[i].RecordSha256, recordSha256, StringComparison.OrdinalIgnoreCase))
                    {
                        return list[i];
                    }
                }
            }

            return list[^1];
        }
    }

    /// <summary>The latest registration of <paramref name="version"/> appended by the registry <paramref name="registryId"/> (or by one without an identity), or <see langword="null"/>.</summary>
    public ModelAnchor? FindFrom(string version, string registryId)
    {
        lock (_gate)
        {
            _anchors ??= Load();
            return _anchors.TryGetValue(version, out var list) ? list.FindLast(a => a.RegistryId is null || a.RegistryId == registryId) : null;
        }
    }

    /// <summary>The versions with a registration appended by the registry <paramref name="registryId"/> (or by one without an identity).</summary>
    public IReadOnlyList<string> VersionsFrom(string registryId)
    {
        lock (_gate)
        {
            _anchors ??= Load();
            return [.. _anchors.Where(kv => kv.Value.Exists(a => a.RegistryId is null || a.RegistryId == registryId)).Select(kv => kv.Key)];
        }
    }

    public void Set(ModelAnchor anchor)
    {
        lock (_gate)
        {
            _anchors ??= Load();
            Add(_anchors, anchor);
        }
    }

    /// <summary>Withdraws the registrations of <paramref name="version"/> with model hash <paramref name="sha256"/> appended by <paramref name="registryId"/> (other replicas' stay).</summary>
    public void Remove(string version, string sha256, string? registryId)
    {
        lock (_gate)
        {
            _anchors ??= Load();
            Withdraw(_anchors, version, sha256, registryId);
        }
    }

    /// <summary>Reads the anchors from the log again: what other registries sharing the log (replicas) appended since.</summary>
    public void Reload()
    {
        var fresh = Load();
        lock (_gate)
        {
            _anchors = fresh;
        }
    }

    private static void Withdraw(Dictionary<string, List<ModelAnchor>> anchors, string version, string? sha256, string? registryId)
    {
        if (anchors.TryGetValue(version, out var list))
        {
            // A withdrawal written before withdrawals named their model hash and registry withdraws every registration of the version.
            list.RemoveAll(a => (sha256 is null || string.Equals(a.Sha256, sha256, StringComparison.OrdinalIgnoreCase)) && (registryId is null || a.RegistryId == registryId));
        }
    }

    private static void Add(Dictionary<string, List<ModelAnchor>> anchors, ModelAnchor anchor)
    {
        if (!anchors.TryGetValue(anchor.Version, out var list))
        {
            anchors[anchor.Version] = list = [];
        }

        list.Add(anchor);
    }

    private Dictionary<string, List<ModelAnchor>> Load()
    {
        var entries = new List<(long Index, string Type, JsonElement Details, string EntityId)>();
        foreach (var type in (ReadOnlySpan<string>)[Registered, Adopted, RegistrationFailed])
        {
            string? token = null;
            do
            {
                var page = log.Query(new AuditQuery { EventType = type, EntityType = "model", Kind = AuditRecordKind.Event, PageSize = 1000, PageToken = token });
                foreach (var entry in page.Entries)
                {
                    if (entry.Record is AuditEvent e && e.ActionDetails.ValueKind == JsonValueKind.Object)
                    {
                        entries.Add((entry.Index, type, e.ActionDetails, e.EntityId));
                    }
                }

                token = page.NextPageToken;
            }
            while (token is not null);
        }

        entries.Sort(static (a, b) => a.Index.CompareTo(b.Index));
        var anchors = new Dictionary<string, List<ModelAnchor>>(StringComparer.Ordinal);
        foreach (var (index, type, details, entityId) in entries)
        {
            if (Text(details, "version") is not { } version)
            {
                continue;
            }

            if (type == RegistrationFailed)
            {
                Withdraw(anchors, version, Text(details, "sha256"), Text(details, "registry_id"));
            }
            else if (Text(details, "sha256") is { Length: 64 } sha)
            {
                Add(anchors, new ModelAnchor(version, sha, Text(details, "config_sha256"), Text(details, "record_sha256"), index, Text(details, "registry_id"), entityId));
            }
        }

        return anchors;
    }

    private static string? Text(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
