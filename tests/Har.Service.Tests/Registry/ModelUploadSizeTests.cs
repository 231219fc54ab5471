using System.Net;
using System.Net.Http.Headers;
using Har.Testing;

namespace Har.Service.Tests.Registry;

/// <summary>
/// Found from outside: a valid 7.6 MB model could not be registered through the API (413 at the 4 MiB limit every
/// request body shares), and raising that limit raised it for the anonymous prediction bodies too. Uploads have their
/// own limit (Har:Service:MaxModelUploadBytes); the test scales both limits down to the fixture model's size.
/// </summary>
public sealed class ModelUploadSizeTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ModelLargerThanTheRequestBodyLimit_IsRegistered_WhilePredictionBodiesKeepTheirLimit()
    {
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string> { ["Har:Service:MaxRequestBodyBytes"] = "2048" }, cancellationToken: Ct);
        using var op = service.CreateClient(service.OperatorKey);
        var model = OnnxModelEditor.WithKey(await File.ReadAllBytesAsync(Path.Combine(ServiceProcess.FixturesDirectory, "tiny-logits-1.1.0.onnx"), Ct), "har.model_version", "7.0.0");
        Assert.True(model.Length > 2048, "the fixture is larger than the request body limit");

        using (var upload = new ByteArrayContent(model))
        {
            upload.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            using var registered = await op.PostAsync("/v1/models", upload, Ct);
            Assert.True(registered.StatusCode == HttpStatusCode.Created, $"{(int)registered.StatusCode} {await registered.Content.ReadAsStringAsync(Ct)}");
        }

        using var tooLarge = await op.PostAsync("/v1/streams/big/samples", ServiceFixture.Bytes(new byte[4096], "application/octet-stream"), Ct);
        var body = await tooLarge.Content.ReadAsStringAsync(Ct);
        Assert.True(tooLarge.StatusCode == HttpStatusCode.RequestEntityTooLarge, $"{(int)tooLarge.StatusCode} {body}");
        Assert.Contains("Har:Service:MaxRequestBodyBytes", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ModelLargerThanTheUploadLimit_Is413NamingIt()
    {
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string> { ["Har:Service:MaxModelUploadBytes"] = "2048" }, cancellationToken: Ct);
        using var op = service.CreateClient(service.OperatorKey);
        var model = OnnxModelEditor.WithKey(await File.ReadAllBytesAsync(Path.Combine(ServiceProcess.FixturesDirectory, "tiny-logits-1.1.0.onnx"), Ct), "har.model_version", "7.0.0");
        using var upload = new ByteArrayContent(model);
        upload.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");

        using var refused = await op.PostAsync("/v1/models", upload, Ct);

        var body = await refused.Content.ReadAsStringAsync(Ct);
        Assert.True(refused.StatusCode == HttpStatusCode.RequestEntityTooLarge, $"{(int)refused.StatusCode} {body}");
        Assert.Contains("Har:Service:MaxModelUploadBytes", body, StringComparison.Ordinal);
    }
}
