using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Har.Audit;
using Har.Deployment.Tests.Support;
using Har.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Har.Deployment.Tests.Registry;

/// <summary>A registry anchored in a real audit log (real files, fsync), in a fresh temp folder.</summary>
internal sealed class AuditedRegistry : IDisposable
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public AuditedRegistry(bool register = true)
    {
        Root = Directory.CreateTempSubdirectory("har-registry-test-").FullName;
        Time = new FakeTimeProvider(new DateTimeOffset(2026, 3, 1, 9, 0, 0, TimeSpan.Zero));
        Log = OpenLog();
        Registry = new ModelRegistry(RegistryRoot, Log, Time);
        if (register)
        {
            Registry.Register(TestRegistry.ChampionFile, new ModelRegistrationOptions { Deployer = "alice" });
            Registry.Register(TestRegistry.CandidateFile, new ModelRegistrationOptions { Deployer = "alice" });
        }
    }

    public string Root { get; }

    public string RegistryRoot => Path.Combine(Root, "registry");

    public string AuditDirectory => Path.Combine(Root, "audit");

    public FakeTimeProvider Time { get; }

    public AuditLog Log { get; private set; }

    public ModelRegistry Registry { get; private set; }

    /// <summary>Closes the log and opens registry and log again, as a restarted process does.</summary>
    public void Reopen()
    {
        Log.Dispose();
        Log = OpenLog();
        Registry = new ModelRegistry(RegistryRoot, Log, Time);
    }

    public IReadOnlyList<AuditEvent> Events(string eventType)
    {
        var page = Log.Query(new AuditQuery { EventType = eventType, PageSize = 1000 });
        return [.. page.Entries.Select(e => (AuditEvent)e.Record)];
    }

    /// <summary>The champion's bytes with a card that claims <paramref name="version"/>: a different, self-consistent model.</summary>
    public static byte[] ImpostorOf(string version) =>
        OnnxModelEditor.WithKey(File.ReadAllBytes(TestRegistry.ChampionFile), "har.model_version", version);

    /// <summary>
    /// The attack of issue 17 point 7: replace <c>model.onnx</c> and rewrite <c>config.json</c> and
    /// <c>deployment_record.json</c> so that all three agree with each other.
    /// </summary>
    public static void SwapConsistently(RegisteredModel target, byte[] replacement)
    {
        File.WriteAllBytes(target.ModelPath, replacement);
        var card = OnnxModelEditor.ReadCard(replacement);
        var config = new JsonObject();
        foreach (var key in card.Keys.Order(StringComparer.Ordinal))
        {
            config[key] = card[key];
        }

        File.WriteAllText(target.ConfigPath, config.ToJsonString(Indented) + "\n");
        var record = JsonNode.Parse(File.ReadAllText(target.DeploymentRecordPath))!;
        record["model"]!["sha256"] = Convert.ToHexStringLower(SHA256.HashData(replacement));
        File.WriteAllText(target.DeploymentRecordPath, record.ToJsonString(Indented) + "\n");
    }

    public void Dispose()
    {
        Log.Dispose();
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private AuditLog OpenLog() => AuditLog.Open(new AuditLogOptions { Directory = AuditDirectory, EnableMetrics = false });
}
