namespace Har.Audit;

/// <summary>The published JSON schemas (draft 2020-12) of the three record types, embedded in the assembly.</summary>
public static class AuditSchemas
{
    /// <summary>Returns the JSON schema of a record type.</summary>
    /// <param name="kind">The record type.</param>
    /// <returns>The schema document as text.</returns>
    public static string Get(AuditRecordKind kind)
    {
        var name = kind switch
        {
            AuditRecordKind.Event => "audit-event",
            AuditRecordKind.Deployment => "deployment-record",
            AuditRecordKind.Rollback => "rollback-record",
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Expected Event, Deployment or Rollback."),
        };
        using var stream = typeof(AuditSchemas).Assembly.GetManifestResourceStream($"Har.Audit.Schemas.{name}.schema.json")
            ?? throw new InvalidOperationException($"The embedded schema {name}.schema.json is missing from {typeof(AuditSchemas).Assembly.GetName().Name}.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
