using System.Net.Http.Headers;
using System.Text;
using Har.Inference;

namespace Har.Service.Tests;

/// <summary>
/// One real service process shared by the security and hostile-input tests: CORS allows
/// <see cref="AllowedOrigin"/> only, the rate limit is far above what the tests send (the burst test
/// starts its own instance), bodies are limited to <see cref="MaxBodyBytes"/>.
/// </summary>
public sealed class ServiceFixture : IAsyncLifetime
{
    public const string AllowedOrigin = "https://console.har.example";
    public const long MaxBodyBytes = 1024 * 1024;
    public const int MaxWindowsPerRequest = 16;

    private ServiceProcess? _service;

    internal ServiceProcess Service => _service ?? throw new InvalidOperationException("The service is not started.");

    /// <summary>The champion's card (window length and channels of the served model).</summary>
    public ModelCard Champion { get; private set; } = null!;

    /// <summary>Values in one window (frames × channels).</summary>
    public int WindowValues => Champion.WindowLength * Champion.ChannelCount;

    public async ValueTask InitializeAsync()
    {
        _service = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            ["Har:Service:CorsOrigins:0"] = AllowedOrigin,
            ["Har:Service:RateLimitPerSecond"] = "1000000",
            ["Har:Service:RateLimitBurst"] = "10000000",
            ["Har:Service:AnonymousWindowsPerSecond"] = "1000000",
            ["Har:Service:MaxWindowsPerRequest"] = MaxWindowsPerRequest.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Har:Service:MaxRequestBodyBytes"] = MaxBodyBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        Champion = ChampionCard(_service.ModelsDirectory);
    }

    public async ValueTask DisposeAsync()
    {
        if (_service is not null)
        {
            await _service.DisposeAsync();
        }
    }

    /// <summary>The card of the oldest model version in a models folder (the one the service makes current).</summary>
    internal static ModelCard ChampionCard(string modelsDirectory) => ModelCard.Load(ChampionPath(modelsDirectory));

    /// <summary>The file of the oldest model version in a models folder.</summary>
    internal static string ChampionPath(string modelsDirectory) =>
        Directory.GetFiles(modelsDirectory, "*.onnx")
            .OrderBy(f => Version.Parse(ModelCard.Load(f).ModelVersion.Split('-', '+')[0]))
            .First();

    internal static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    internal static ByteArrayContent Bytes(byte[] bytes, string? contentType)
    {
        var content = new ByteArrayContent(bytes);
        if (contentType is not null)
        {
            // Unvalidated: the hostile tests send malformed content types on purpose.
            if (!MediaTypeHeaderValue.TryParse(contentType, out var parsed) || parsed.ToString() != contentType)
            {
                content.Headers.TryAddWithoutValidation("Content-Type", contentType);
            }
            else
            {
                content.Headers.ContentType = parsed;
            }
        }

        return content;
    }
}
