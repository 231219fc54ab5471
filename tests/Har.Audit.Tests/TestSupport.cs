using System.Text.Json;

namespace Har.Audit.Tests;

/// <summary>A unique temporary directory, deleted on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "har-audit-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // best effort
        }
    }
}

internal static class Samples
{
    public static readonly DateTimeOffset T0 = new(2026, 1, 15, 10, 30, 0, TimeSpan.Zero);

    /// <summary>The reference deployment record (seed document 000), with a real 64-hex SHA-256 in place of its elided one.</summary>
    public const string ReferenceDeploymentJson = """
        {
          "deployment_id": "deploy-2026-01-15-001",
          "timestamp": "2026-01-15T10:30:00Z",
          "model": {
            "name": "1DCNN_BiLSTM",
            "version": "1.2.0",
            "mlflow_run_id": "abc123def456",
            "sha256": "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90",
            "parameters": 499131
          },
          "training_data": { "dvc_version": "v1.0.0", "commit": "abc123", "n_samples": 450000, "n_users": 16 },
          "validation": { "test_accuracy": 0.934, "macro_f1": 0.918, "passed_smoke_test": true },
          "config": { "window_size": 200, "sample_rate": 50, "n_classes": 11, "confidence_threshold": 0.70 },
          "deployer": { "user": "oleh.pekh", "method": "CI/CD pipeline", "approved_by": "supervisor" },
          "environment": { "target": "production-cluster-01", "replicas": 3, "resources": { "cpu": "500m", "memory": "2Gi" } }
        }
        """;

    public const string RollbackJson = """
        {
          "rollback_id": "rb-2026-01-16-001",
          "timestamp": "2026-01-16T08:00:00.250+01:00",
          "model": "1DCNN_BiLSTM",
          "from_version": "1.2.0",
          "to_version": "1.1.0",
          "trigger": "error_rate > 5%",
          "evidence": { "error_rate": 0.071, "window_minutes": 5, "samples": 1200 },
          "operator": "rollout-controller",
          "incident": { "id": "INC-4711", "url": "https://incidents.example.com/INC-4711" }
        }
        """;

    public const string EventJson = """
        {
          "event_type": "model.promoted",
          "entity_type": "model",
          "entity_id": "1DCNN_BiLSTM",
          "severity": "info",
          "action_details": { "from_weight": 50, "to_weight": 100, "gate": { "passed": true } },
          "actor": "alice",
          "timestamp": "2026-01-15T11:00:00Z"
        }
        """;

    public static AuditEvent Event(int i, string? eventType = null, string? actor = null, string? entity = null, DateTimeOffset? at = null) => new()
    {
        EventType = eventType ?? "test.event",
        EntityType = "model",
        EntityId = entity ?? $"entity-{i % 7}",
        Severity = (AuditSeverity)(i % 6),
        ActionDetails = JsonSerializer.SerializeToElement(new { i, note = "ünïcødé ✓", ratio = i / 3.0 }),
        Actor = actor ?? $"actor-{i % 3}",
        Timestamp = at ?? T0.AddSeconds(i),
    };
}
