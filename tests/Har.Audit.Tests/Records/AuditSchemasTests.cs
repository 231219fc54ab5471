using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Har.Audit.Tests.Records;

/// <summary>The published schemas and the typed parsing agree: same members, same required set, no extras allowed.</summary>
public sealed class AuditSchemasTests
{
    public static TheoryData<AuditRecordKind, string> Kinds() => new()
    {
        { AuditRecordKind.Deployment, Samples.ReferenceDeploymentJson },
        { AuditRecordKind.Rollback, Samples.RollbackJson },
        { AuditRecordKind.Event, Samples.EventJson },
    };

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Schema_RequiredMembers_AreExactlyTheOnesParsingDemands(AuditRecordKind kind, string sample)
    {
        using var schema = JsonDocument.Parse(AuditSchemas.Get(kind));
        foreach (var (path, obj) in ObjectSchemas(schema.RootElement, "$"))
        {
            Assert.False(obj.GetProperty("additionalProperties").GetBoolean(), $"{path} must forbid additional properties");
            var required = obj.GetProperty("required").EnumerateArray().Select(e => e.GetString()!).ToHashSet();
            foreach (var member in obj.GetProperty("properties").EnumerateObject())
            {
                var sampleNode = JsonNode.Parse(sample)!;
                var parent = Navigate(sampleNode, path);
                if (parent is null || !parent.AsObject().ContainsKey(member.Name))
                {
                    continue; // optional member absent from the sample
                }

                parent.AsObject().Remove(member.Name);
                var bytes = Encoding.UTF8.GetBytes(sampleNode.ToJsonString());
                if (required.Contains(member.Name))
                {
                    var ex = Assert.Throws<AuditRecordException>(() => AuditRecord.Parse(kind, bytes));
                    Assert.Equal($"{path}.{member.Name}: required field is missing", ex.Message);
                }
                else
                {
                    Assert.Equal(kind, AuditRecord.Parse(kind, bytes).Kind);
                }
            }

            // Unknown members are rejected at every level the schema closes.
            var withExtra = JsonNode.Parse(sample)!;
            var target = Navigate(withExtra, path);
            if (target is not null)
            {
                target["x_unknown"] = 1;
                var ex = Assert.Throws<AuditRecordException>(() => AuditRecord.Parse(kind, Encoding.UTF8.GetBytes(withExtra.ToJsonString())));
                Assert.StartsWith($"{path}.x_unknown: unknown field; expected only: ", ex.Message, StringComparison.Ordinal);
                var listed = ex.Message[(ex.Message.IndexOf("expected only: ", StringComparison.Ordinal) + 15)..].Split(", ").ToHashSet();
                Assert.Equal(obj.GetProperty("properties").EnumerateObject().Select(p => p.Name).ToHashSet(), listed);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Serialised_Record_UsesOnlySchemaMembersAndAllRequiredOnes(AuditRecordKind kind, string sample)
    {
        using var schema = JsonDocument.Parse(AuditSchemas.Get(kind));
        using var output = JsonDocument.Parse(AuditRecord.Parse(kind, Encoding.UTF8.GetBytes(sample)).ToCanonicalJson());
        foreach (var (path, obj) in ObjectSchemas(schema.RootElement, "$"))
        {
            var node = NavigateElement(output.RootElement, path);
            if (node is null)
            {
                continue;
            }

            var names = node.Value.EnumerateObject().Select(p => p.Name).ToHashSet();
            var allowed = obj.GetProperty("properties").EnumerateObject().Select(p => p.Name).ToHashSet();
            Assert.Subset(allowed, names);
            Assert.Superset(obj.GetProperty("required").EnumerateArray().Select(e => e.GetString()!).ToHashSet(), names);
            foreach (var p in node.Value.EnumerateObject())
            {
                var type = obj.GetProperty("properties").GetProperty(p.Name).GetProperty("type").GetString();
                var ok = type switch
                {
                    "string" => p.Value.ValueKind == JsonValueKind.String,
                    "integer" => p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt64(out _),
                    "number" => p.Value.ValueKind == JsonValueKind.Number,
                    "boolean" => p.Value.ValueKind is JsonValueKind.True or JsonValueKind.False,
                    "object" => p.Value.ValueKind == JsonValueKind.Object,
                    _ => false,
                };
                Assert.True(ok, $"{path}.{p.Name} is {p.Value.ValueKind}; the schema says {type}");
            }
        }
    }

    [Fact]
    public void Schemas_AreDraft202012WithDistinctIds()
    {
        var ids = Enum.GetValues<AuditRecordKind>().Select(k =>
        {
            using var doc = JsonDocument.Parse(AuditSchemas.Get(k));
            Assert.Equal("https://json-schema.org/draft/2020-12/schema", doc.RootElement.GetProperty("$schema").GetString());
            return doc.RootElement.GetProperty("$id").GetString();
        }).ToList();
        Assert.Equal(3, ids.Distinct().Count());
    }

    private static IEnumerable<(string Path, JsonElement Schema)> ObjectSchemas(JsonElement schema, string path)
    {
        yield return (path, schema);
        foreach (var p in schema.GetProperty("properties").EnumerateObject())
        {
            if (p.Value.GetProperty("type").GetString() == "object" && p.Value.TryGetProperty("properties", out _))
            {
                foreach (var inner in ObjectSchemas(p.Value, path + "." + p.Name))
                {
                    yield return inner;
                }
            }
        }
    }

    private static JsonNode? Navigate(JsonNode root, string path) =>
        path.Split('.').Skip(1).Aggregate<string, JsonNode?>(root, (n, p) => n?[p]);

    private static JsonElement? NavigateElement(JsonElement root, string path)
    {
        JsonElement? current = root;
        foreach (var p in path.Split('.').Skip(1))
        {
            if (current is null || !current.Value.TryGetProperty(p, out var next))
            {
                return null;
            }

            current = next;
        }

        return current;
    }
}
