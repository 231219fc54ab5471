using System.Text;
using System.Text.Json;

namespace Har.Audit.Tests.Records;

public sealed class AuditRecordTests
{
    [Fact]
    public void Parse_ReferenceDeploymentRecord_ReadsEveryField()
    {
        var record = DeploymentRecord.Parse(Encoding.UTF8.GetBytes(Samples.ReferenceDeploymentJson));
        Assert.Equal("deploy-2026-01-15-001", record.DeploymentId);
        Assert.Equal(Samples.T0, record.Timestamp);
        Assert.Equivalent(new DeployedModel("1DCNN_BiLSTM", "1.2.0", "abc123def456", "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90", 499131), record.Model, strict: true);
        Assert.Equivalent(new TrainingDataIdentity("v1.0.0", "abc123", 450000, 16), record.TrainingData, strict: true);
        Assert.Equivalent(new ValidationMetrics(0.934, 0.918, true), record.Validation, strict: true);
        Assert.Equivalent(new InferenceConfig(200, 50, 11, 0.7), record.Config, strict: true);
        Assert.Equivalent(new Deployer("oleh.pekh", "CI/CD pipeline", "supervisor"), record.Deployer, strict: true);
        Assert.Equal("production-cluster-01", record.Environment.Target);
        Assert.Equivalent(new ResourceRequest("500m", "2Gi"), record.Environment.Resources, strict: true);
    }

    [Fact]
    public void ToCanonicalJson_ReferenceRecord_EqualsCanonicalisedInput()
    {
        // Independent path: the generic RFC 8785 canonicaliser over the source text.
        var input = Encoding.UTF8.GetBytes(Samples.ReferenceDeploymentJson);
        Assert.Equal(Encoding.UTF8.GetString(CanonicalJson.Canonicalize(input)), Encoding.UTF8.GetString(DeploymentRecord.Parse(input).ToCanonicalJson()));
        var rollback = Encoding.UTF8.GetBytes(Samples.RollbackJson);
        var canonicalRollback = RollbackRecord.Parse(rollback).ToCanonicalJson();
        Assert.Equal(canonicalRollback, CanonicalJson.Canonicalize(canonicalRollback));
        Assert.Contains("\"timestamp\":\"2026-01-16T07:00:00.25Z\"", Encoding.UTF8.GetString(canonicalRollback), StringComparison.Ordinal);
        var evt = Encoding.UTF8.GetBytes(Samples.EventJson);
        Assert.Equal(CanonicalJson.Canonicalize(evt), AuditEvent.Parse(evt).ToCanonicalJson());
    }

    [Fact]
    public void Parse_AutoDetect_PicksRecordType()
    {
        Assert.IsType<DeploymentRecord>(AuditRecord.Parse(Encoding.UTF8.GetBytes(Samples.ReferenceDeploymentJson)));
        Assert.IsType<RollbackRecord>(AuditRecord.Parse(Encoding.UTF8.GetBytes(Samples.RollbackJson)));
        Assert.IsType<AuditEvent>(AuditRecord.Parse(Encoding.UTF8.GetBytes(Samples.EventJson)));
        var ex = Assert.Throws<AuditRecordException>(() => AuditRecord.Parse("""{"x":1}"""u8));
        Assert.Contains("cannot tell the record type", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("model.sha256", "$.model.sha256: required field is missing")]
    [InlineData("environment.resources.memory", "$.environment.resources.memory: required field is missing")]
    [InlineData("timestamp", "$.timestamp: required field is missing")]
    public void Parse_MissingRequiredField_NamesThePath(string field, string message)
    {
        var ex = Assert.Throws<AuditRecordException>(() => DeploymentRecord.Parse(Mutate(Samples.ReferenceDeploymentJson, field, remove: true)));
        Assert.Equal(message, ex.Message);
        Assert.Equal("$." + field, ex.JsonPath);
    }

    [Theory]
    [InlineData("", "$.colour")]
    [InlineData("model", "$.model.colour")]
    [InlineData("environment.resources", "$.environment.resources.colour")]
    public void Parse_UnknownField_NamesThePathAndTheExpectedFields(string parent, string path)
    {
        var json = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(Samples.ReferenceDeploymentJson)!;
        var node = System.Text.Json.Nodes.JsonNode.Parse(Samples.ReferenceDeploymentJson)!;
        var target = parent.Length == 0 ? node : parent.Split('.').Aggregate(node, (n, p) => n[p]!);
        target["colour"] = "blue";
        var ex = Assert.Throws<AuditRecordException>(() => DeploymentRecord.Parse(Encoding.UTF8.GetBytes(node.ToJsonString())));
        Assert.StartsWith(path + ": unknown field; expected only: ", ex.Message, StringComparison.Ordinal);
        Assert.NotEmpty(json);
    }

    [Theory]
    [InlineData("""{"model":{"sha256":"a1b2c3d4e5f6..."}}""", "$.model.sha256: expected 64 lowercase hex digits (a SHA-256), got 'a1b2c3d4e5f6...'")]
    [InlineData("""{"config":{"window_size":"200"}}""", "$.config.window_size: expected an integer, got a string")]
    [InlineData("""{"config":{"window_size":200.5}}""", "$.config.window_size: expected an integer, got 200.5")]
    [InlineData("""{"validation":{"test_accuracy":1.5}}""", "$.validation.test_accuracy: expected a number in [0, 1], got 1.5")]
    [InlineData("""{"timestamp":"2026-01-15 10:30"}""", "$.timestamp: expected an RFC 3339 date-time with a zone (e.g. 2026-01-15T10:30:00Z), got '2026-01-15 10:30'")]
    [InlineData("""{"deployer":{"user":""}}""", "$.deployer.user: expected a non-empty string, got an empty one")]
    public void Parse_WrongValue_SaysWhatWasExpected(string patch, string message)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(Samples.ReferenceDeploymentJson)!;
        Merge(node, System.Text.Json.Nodes.JsonNode.Parse(patch)!);
        var ex = Assert.Throws<AuditRecordException>(() => DeploymentRecord.Parse(Encoding.UTF8.GetBytes(node.ToJsonString())));
        Assert.Equal(message, ex.Message);
    }

    [Fact]
    public void Parse_EventWithUnknownSeverity_ListsAllowedValues()
    {
        var json = Samples.EventJson.Replace("\"info\"", "\"fatal\"", StringComparison.Ordinal);
        var ex = Assert.Throws<AuditRecordException>(() => AuditEvent.Parse(Encoding.UTF8.GetBytes(json)));
        Assert.Equal("$.severity: expected one of: debug, info, notice, warning, error, critical; got 'fatal'", ex.Message);
    }

    [Fact]
    public void ToCanonicalJson_CodeBuiltRecordMissingValue_IsRejected()
    {
        var evt = new AuditEvent
        {
            EventType = string.Empty,
            EntityType = "model",
            EntityId = "m",
            Severity = AuditSeverity.Info,
            ActionDetails = JsonSerializer.SerializeToElement(new { a = 1 }),
            Actor = "bob",
            Timestamp = Samples.T0,
        };
        var ex = Assert.Throws<AuditRecordException>(evt.ToCanonicalJson);
        Assert.Equal("$.event_type: expected a non-empty string, got an empty one", ex.Message);
    }

    [Fact]
    public void ComputeSha256_EqualsSha256OfCanonicalInput()
    {
        var input = Encoding.UTF8.GetBytes(Samples.EventJson);
        Assert.Equal(AuditHash.Sha256OfCanonicalJson(input), AuditEvent.Parse(input).ComputeSha256());
    }

    internal static byte[] Mutate(string json, string dottedPath, bool remove)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(json)!;
        var parts = dottedPath.Split('.');
        var parent = parts[..^1].Aggregate(node, (n, p) => n[p]!);
        if (remove)
        {
            parent.AsObject().Remove(parts[^1]);
        }

        return Encoding.UTF8.GetBytes(node.ToJsonString());
    }

    private static void Merge(System.Text.Json.Nodes.JsonNode target, System.Text.Json.Nodes.JsonNode patch)
    {
        foreach (var (key, value) in patch.AsObject().ToList())
        {
            if (value is System.Text.Json.Nodes.JsonObject && target[key] is System.Text.Json.Nodes.JsonObject)
            {
                Merge(target[key]!, value);
            }
            else
            {
                target[key] = value?.DeepClone();
            }
        }
    }
}

public sealed class RecordTextTests
{
    /// <summary>Law: the fast timestamp formatter equals the framework's custom format, and parsing it returns the same instant.</summary>
    [Fact]
    public void FormatTimestamp_RandomInstants_MatchesFrameworkFormatAndRoundTrips()
    {
        var rng = new Random(1);
        for (var i = 0; i < 20000; i++)
        {
            var ticks = rng.NextInt64(DateTime.MinValue.Ticks, DateTime.MaxValue.Ticks);
            if (i % 3 == 0)
            {
                ticks -= ticks % TimeSpan.TicksPerSecond; // whole seconds
            }
            else if (i % 3 == 1)
            {
                ticks -= ticks % TimeSpan.TicksPerMillisecond;
            }

            var t = new DateTimeOffset(ticks, TimeSpan.Zero);
            var text = RecordText.FormatTimestamp(t);
            Assert.Equal(t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", System.Globalization.CultureInfo.InvariantCulture), text);
            Assert.True(RecordText.TryParseTimestamp(text, out var back), text);
            Assert.Equal(t, back);
        }
    }

    [Theory]
    [InlineData("2026-01-15T10:30:00Z", true)]
    [InlineData("2026-01-15T10:30:00.1234567Z", true)]
    [InlineData("2026-01-15T10:30:00+02:00", true)]
    [InlineData("2026-02-30T10:30:00Z", false)]
    [InlineData("2026-01-15T24:00:00Z", false)]
    [InlineData("2026-01-15T10:30:00.Z", false)]
    [InlineData("2026-01-15T10:30:00.12345678Z", false)]
    [InlineData("2026-01-15T10:30:00", false)]
    [InlineData("2026-01-15 10:30:00Z", false)]
    public void TryParseTimestamp_Shapes_AcceptOnlyRfc3339WithZone(string text, bool valid) =>
        Assert.Equal(valid, RecordText.TryParseTimestamp(text, out _));
}

/// <summary>Records built in code are checked with the same rules and messages as records parsed from JSON.</summary>
public sealed class RecordChecksTests
{
    private static readonly DeploymentRecord Reference = DeploymentRecord.Parse(Encoding.UTF8.GetBytes(Samples.ReferenceDeploymentJson));

    public static TheoryData<string, string> Cases() => new()
    {
        { "model.sha256", "\"a1b2c3d4e5f6...\"" },
        { "model.sha256", "\"A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90\"" },
        { "model.name", "\"\"" },
        { "model.name", "null" },
        { "model.parameters", "-1" },
        { "config.window_size", "0" },
        { "config.n_classes", "1" },
        { "config.confidence_threshold", "1.5" },
        { "config.sample_rate", "0" },
        { "validation.macro_f1", "-0.1" },
        { "environment.replicas", "-3" },
        { "environment.resources.cpu", "\"\"" },
        { "deployer.approved_by", "null" },
        { "training_data.n_users", "-1" },
        { "deployment_id", "\"\"" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void ToCanonicalJson_InvalidValueBuiltInCode_SameMessageAsParsingIt(string path, string jsonValue)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(Samples.ReferenceDeploymentJson)!;
        var parts = path.Split('.');
        var parent = parts[..^1].Aggregate(node, (n, p) => n[p]!);
        parent[parts[^1]] = System.Text.Json.Nodes.JsonNode.Parse(jsonValue);
        var parsed = Assert.Throws<AuditRecordException>(() => DeploymentRecord.Parse(Encoding.UTF8.GetBytes(node.ToJsonString())));

        var built = Build(path, jsonValue);
        var written = Assert.Throws<AuditRecordException>(built.ToCanonicalJson);
        Assert.Equal(parsed.Message, written.Message);
        Assert.Equal(parsed.JsonPath, written.JsonPath);
    }

    [Fact]
    public void ToCanonicalJson_EventWithNonObjectDetailsOrLoneSurrogate_IsRejected()
    {
        var evt = AuditEvent.Parse(Encoding.UTF8.GetBytes(Samples.EventJson));
        var array = new AuditEvent { EventType = evt.EventType, EntityType = evt.EntityType, EntityId = evt.EntityId, Severity = evt.Severity, Actor = evt.Actor, Timestamp = evt.Timestamp, ActionDetails = JsonSerializer.SerializeToElement(new[] { 1 }) };
        Assert.Equal("$.action_details: expected an object, got an array", Assert.Throws<AuditRecordException>(array.ToCanonicalJson).Message);
        var unset = new AuditEvent { EventType = evt.EventType, EntityType = evt.EntityType, EntityId = evt.EntityId, Severity = evt.Severity, Actor = evt.Actor, Timestamp = evt.Timestamp, ActionDetails = default };
        Assert.Equal("$.action_details: expected an object, got null", Assert.Throws<AuditRecordException>(unset.ToCanonicalJson).Message);
        var surrogate = new AuditEvent { EventType = evt.EventType, EntityType = evt.EntityType, EntityId = "bad\ud800", Severity = evt.Severity, Actor = evt.Actor, Timestamp = evt.Timestamp, ActionDetails = evt.ActionDetails };
        Assert.Contains("lone surrogate", Assert.Throws<AuditRecordException>(surrogate.ToCanonicalJson).Message, StringComparison.Ordinal);
        var severity = new AuditEvent { EventType = evt.EventType, EntityType = evt.EntityType, EntityId = evt.EntityId, Severity = (AuditSeverity)42, Actor = evt.Actor, Timestamp = evt.Timestamp, ActionDetails = evt.ActionDetails };
        Assert.StartsWith("$.severity: expected one of: debug, info", Assert.Throws<AuditRecordException>(severity.ToCanonicalJson).Message, StringComparison.Ordinal);
    }

    private static DeploymentRecord Build(string path, string jsonValue)
    {
        string? Text() => jsonValue == "null" ? null : JsonSerializer.Deserialize<string>(jsonValue);
        long Long() => long.Parse(jsonValue, System.Globalization.CultureInfo.InvariantCulture);
        double Double() => double.Parse(jsonValue, System.Globalization.CultureInfo.InvariantCulture);
        var r = Reference;
        var model = r.Model;
        var config = r.Config;
        var validation = r.Validation;
        var environment = r.Environment;
        var deployer = r.Deployer;
        var training = r.TrainingData;
        var id = r.DeploymentId;
        switch (path)
        {
            case "model.sha256": model = With(model, "Sha256", Text()!); break;
            case "model.name": model = With(model, "Name", Text()!); break;
            case "model.parameters": model = With(model, "Parameters", Long()); break;
            case "config.window_size": config = With(config, "WindowSize", (int)Long()); break;
            case "config.n_classes": config = With(config, "Classes", (int)Long()); break;
            case "config.confidence_threshold": config = With(config, "ConfidenceThreshold", Double()); break;
            case "config.sample_rate": config = With(config, "SampleRateHz", Double()); break;
            case "validation.macro_f1": validation = With(validation, "MacroF1", Double()); break;
            case "environment.replicas": environment = With(environment, "Replicas", (int)Long()); break;
            case "environment.resources.cpu": environment = With(environment, "Resources", With(environment.Resources, "Cpu", Text()!)); break;
            case "deployer.approved_by": deployer = With(deployer, "ApprovedBy", Text()!); break;
            case "training_data.n_users": training = With(training, "Users", Long()); break;
            case "deployment_id": id = Text()!; break;
            default: throw new ArgumentOutOfRangeException(nameof(path), path, "no builder for this path");
        }

        return new DeploymentRecord(id, model, training, validation, config, deployer, environment) { Timestamp = r.Timestamp };
    }

    /// <summary>A copy of <paramref name="source"/> with one property replaced (the record parts take their values through their constructor).</summary>
    private static T With<T>(T source, string property, object? value)
        where T : class
    {
        var ctor = typeof(T).GetConstructors().Single();
        var args = ctor.GetParameters()
            .Select(p => string.Equals(p.Name, property, StringComparison.OrdinalIgnoreCase)
                ? value
                : typeof(T).GetProperties().Single(q => string.Equals(q.Name, p.Name, StringComparison.OrdinalIgnoreCase)).GetValue(source))
            .ToArray();
        return (T)ctor.Invoke(args);
    }
}
