using System.Text.Json.Nodes;
using Prometheus;

namespace Har.Audit.Tests.Checkpoints;

public sealed class AuditProofBundleTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void Parse_EmptyObject_NamesTheMissingMemberAndTheExpectedShape()
    {
        // Was "Not a valid proof bundle: The given key was not present in the dictionary."
        var ex = Assert.Throws<FormatException>(() => AuditProofBundle.Parse("{}"));
        Assert.Contains("the member 'format' is missing", ex.Message, StringComparison.Ordinal);
        Assert.Contains("\"format\": \"har-audit-proof/v1\"", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("dictionary", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("leaf_index", "the member 'leaf_index' is missing")]
    [InlineData("inclusion_path", "the member 'inclusion_path' is missing")]
    [InlineData("entry", "the member 'entry' is missing")]
    [InlineData("checkpoint", "the member 'checkpoint' is missing")]
    public async Task Parse_AMemberRemoved_NamesIt(string member, string expected)
    {
        var json = JsonNode.Parse(await ValidBundleAsync())!.AsObject();
        json.Remove(member);

        var ex = Assert.Throws<FormatException>(() => AuditProofBundle.Parse(json.ToJsonString()));
        Assert.StartsWith("Not a valid proof bundle: " + expected + "; expected a JSON object", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("leaf_index", "\"7\"", "'leaf_index' is a JSON string, not a number")]
    [InlineData("leaf_index", "-1", "'leaf_index' is not a non-negative integer")]
    [InlineData("inclusion_path", "[\"zz\"]", "'inclusion_path'[0] is not a hash in hex")]
    [InlineData("entry", "\"%%%\"", "'entry' is not base64")]
    [InlineData("checkpoint", "\"not a note\"", "'checkpoint' is not a signed checkpoint note")]
    public async Task Parse_AMemberMalformed_NamesIt(string member, string value, string expected)
    {
        var json = JsonNode.Parse(await ValidBundleAsync())!.AsObject();
        json[member] = JsonNode.Parse(value);

        var ex = Assert.Throws<FormatException>(() => AuditProofBundle.Parse(json.ToJsonString()));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("[]", "it is a JSON array")]
    [InlineData("{", "it is not JSON")]
    public void Parse_NotAnObject_SaysWhatItIs(string json, string expected)
    {
        var ex = Assert.Throws<FormatException>(() => AuditProofBundle.Parse(json));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_Null_IsArgumentNullException() =>
        Assert.Throws<ArgumentNullException>("json", () => AuditProofBundle.Parse(null!));

    private static async Task<string> ValidBundleAsync()
    {
        using var dir = new TempDir();
        using var key = AuditSigningKey.Generate("audit.example.com/har");
        using var log = AuditLog.Open(new AuditLogOptions { Directory = dir.Path, Origin = "audit.example.com/har", MetricsRegistry = new CollectorRegistry() });
        for (var i = 0; i < 3; i++)
        {
            await log.AppendAsync(Samples.Event(i), Ct);
        }

        log.CreateCheckpoint(key);
        var json = log.ExportProof(1).ToJson();
        Assert.True(AuditProofBundle.Parse(json).Verify(key.ToVerifierKey(), out var problem), problem);
        return json;
    }
}
