using System.Text.Json;
using Har.Audit;

namespace Har.Deployment;

/// <summary>What the audit log says a version is: the hashes of its three files when it was registered (or adopted).</summary>
/// <param name="Version">The version.</param>
/// <param name="Sha256">The SHA-256 of <c>model.onnx</c>.</param>
/// <param name="ConfigSha256">The SHA-256 of <c>config.json</c>'s bytes, or <see langword="null"/> for an entry written before these hashes were recorded.</param>
/// <param name="RecordSha256">The SHA-256 of <c>deployment_record.json</c>'s bytes, or <see langword="null"/> likewise.</param>
/// <param name="Index">The audit entry's index, or -1 when it is not known yet.</param>
internal sealed record ModelAnchor(string Version, string Sha256, string? ConfigSha256, string? RecordSha256, long Index);

/// <summary>
/// The registry's trust anchors, read from the audit log: the latest <c>registry.registered</c> or
/// <c>registry.adopted</c> event of each version, unless a later <c>registry.registration_failed</c>
/// withdrew it. Read once (one scan of the log's index) and then kept up to date by the registry's own
/// appends; the log has one writer, this process.
/// </summary>
internal sealed class RegistryAnchors(AuditLog log)
{
    internal const string Registered = "registry.registered";
    internal const string Adopted = "registry.adopted";
    internal const string RegistrationFailed = "registry.registration_failed";

    private readonly Lock _gate = new();
    private Dictionary<string, ModelAnchor>? _anchors;

    /// <summary>Gets the audit log's directory name (for messages).</summary>
    public string LogName => Path.GetFileName(log.Directory);

    public ModelAnchor? Find(string version)
    {
        lock (_gate)
        {
            _anchors ??= Load();
            return _anchors.GetValueOrDefault(version);
        }
    }

    public void Set(ModelAnchor anchor)
    {
        lock (_gate)
        {
            _anchors ??= Load();
            _anchors[anchor.Version] = anchor;
        }
    }

    public void Remove(string version)
    {
        lock (_gate)
        {
            _anchors ??= Load();
            _anchors.Remove(version);
        }
    }

    private Dictionary<string, ModelAnchor> Load()
    {
        var entries = new List<(long Index, string Type, JsonElement Details)>();
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
                        entries.Add((entry.Index, type, e.ActionDetails));
                    }
                }

                token = page.NextPageToken;
            }
            while (token is not null);
        }

        entries.Sort(static (a, b) => a.Index.CompareTo(b.Index));
        var anchors = new Dictionary<string, ModelAnchor>(StringComparer.Ordinal);
        foreach (var (index, type, details) in entries)
        {
            if (Text(details, "version") is not { } version)
            {
                continue;
            }

            if (type == RegistrationFailed)
            {
                anchors.Remove(version);
            }
            else if (Text(details, "sha256") is { Length: 64 } sha)
            {
                anchors[version] = new ModelAnchor(version, sha, Text(details, "config_sha256"), Text(details, "record_sha256"), index);
            }
        }

        return anchors;
    }

    private static string? Text(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
