using System.Net;
using System.Text.Json;
using Har.Testing;

namespace Har.Service.Tests.Registry;

/// <summary>
/// <c>POST /v1/models</c> writes its query parameters (approved_by, run_id, target) into the version's immutable
/// deployment record. It stored U+202E, CR/LF and NUL, joined a repeated parameter with commas ("prod,staging"),
/// stored a 6,000-character run_id and ignored unknown parameters. Each is a 400 naming the parameter and what is
/// accepted now, before the upload is stored, and nothing is registered.
/// </summary>
public sealed class ModelRegistrationQueryTests
{
    private const string Version = "9.9.1";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task BadParameters_Are400_AndRegisterNothing_GoodOnesAreRecorded()
    {
        // Its own service: the shared fixture's body limit (1 MiB) is below a model's size.
        await using var service = await ServiceProcess.StartAsync(cancellationToken: Ct);
        using var operatorClient = service.CreateClient(service.OperatorKey);
        var model = OnnxModelEditor.WithKey(await File.ReadAllBytesAsync(ServiceFixture.ChampionPath(service.ModelsDirectory), Ct), "har.model_version", Version);

        foreach (var (query, expected) in new[]
        {
            ("approved_by=%E2%80%AEnimda", "approved_by holds a format character (U+202E) at position 0"),
            ("run_id=run%0D%0Ainjected", "run_id holds a control character (U+000D) at position 3"),
            ("run_id=%00", "run_id holds a control character (U+0000) at position 0"),
            ("approved_by=alice%E2%80%8Bbob", "approved_by holds a format character (U+200B)"),
            ("target=prod&target=staging", "Query parameter 'target' is given 2 times; give it once."),
            ("run_id=" + new string('r', 6000), "run_id has 6000 characters; at most 128 are accepted."),
            ("approved_by=" + new string('a', 257), "approved_by has 257 characters; at most 256"),
            ("target=" + new string('t', 65), "target has 65 characters; at most 64"),
            ("approved_by=", "approved_by is empty; give a value or leave the parameter out."),
            ("approver=alice", "Unknown query parameter 'approver'; POST /v1/models accepts approved_by (who approved the version; at most 256 characters), run_id"),
            ("approved_by=alice&environment=prod&replicas=3", "Unknown query parameters 'environment', 'replicas'"),
        })
        {
            using var response = await operatorClient.PostAsync("/v1/models?" + query, ServiceFixture.Bytes(model, "application/octet-stream"), Ct);
            var body = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{query[..Math.Min(query.Length, 60)]}: {(int)response.StatusCode} {body[..Math.Min(body.Length, 400)]}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.Contains(expected, JsonDocument.Parse(body).RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
            using var get = await operatorClient.GetAsync($"/v1/models/{Version}", Ct);
            Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
        }

        // Printable text within the bounds, non-ASCII included, is recorded as sent.
        using (var ok = await operatorClient.PostAsync("/v1/models?approved_by=Zo%C3%AB%20M%C3%BCller&run_id=run-42&target=staging", ServiceFixture.Bytes(model, "application/octet-stream"), Ct))
        {
            Assert.True(ok.StatusCode == HttpStatusCode.Created, $"{(int)ok.StatusCode} {await ok.Content.ReadAsStringAsync(Ct)}");
        }

        using var auditor = service.CreateClient(service.AuditorKey);
        var record = (await ServiceQueries.AuditEntriesAsync(auditor, "deployment", Ct))
            .Select(e => e.GetProperty("record"))
            .Single(r => r.GetProperty("model").GetProperty("version").GetString() == Version);
        Assert.Equal("Zoë Müller", record.GetProperty("deployer").GetProperty("approved_by").GetString());
        Assert.Equal("run-42", record.GetProperty("model").GetProperty("mlflow_run_id").GetString());
        Assert.Equal("staging", record.GetProperty("environment").GetProperty("target").GetString());
    }
}
