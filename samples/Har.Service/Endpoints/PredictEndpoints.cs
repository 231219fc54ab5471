using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Serialization;
using Har.Deployment;
using Har.Inference;
using Har.Service.Security;
using Microsoft.Extensions.Options;

namespace Har.Service.Endpoints;

/// <summary><c>POST /v1/predict</c> (whole windows) and <c>POST /v1/streams/{id}/samples</c> (raw interleaved frames).</summary>
internal static class PredictEndpoints
{
    private const string OctetStream = "application/octet-stream";

    public static void MapPredictEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/predict", PredictAsync).RequireAuthorization(Roles.PredictPolicy);
        app.MapPost("/v1/streams/{streamId}/samples", IngestAsync).RequireAuthorization(Roles.PredictPolicy);
    }

    private static async Task<IResult> PredictAsync(HttpRequest request, RolloutController controller, StreamIngest ingest, IOptions<ServiceOptions> options, CancellationToken ct)
    {
        var windowValues = ingest.WindowValues;
        string streamId;
        List<float[]> windows;
        if (IsOctetStream(request))
        {
            var values = await ReadFloat32Async(request, ct);
            if (values.Length == 0 || values.Length % windowValues != 0)
            {
                return Results.Problem(statusCode: 400, detail: $"The body holds {values.Length} float32 values; expected a positive multiple of {windowValues} (windows of {windowValues / ingest.FrameValues} frames × {ingest.FrameValues} channels ax ay az gx gy gz, little-endian).");
            }

            windows = [.. values.Chunk(windowValues)];
            streamId = request.Headers["X-Stream-Id"].ToString() is { Length: > 0 } h ? h : request.Query["stream_id"].ToString();
        }
        else if (request.HasJsonContentType())
        {
            var (body, error) = await ServiceJson.ReadAsync<PredictRequest>(request, "{\"stream_id\": \"…\", \"windows\": [[…], …]}", ct);
            if (error is not null)
            {
                return error;
            }

            if (body!.Windows is not { Length: > 0 })
            {
                return Results.Problem(statusCode: 400, detail: "'windows' is missing or empty; expected an array of windows, each an array of interleaved samples.");
            }

            windows = [];
            for (var i = 0; i < body.Windows.Length; i++)
            {
                if (body.Windows[i] is not { } w || w.Length != windowValues)
                {
                    return Results.Problem(statusCode: 400, detail: $"windows[{i}] has {body.Windows[i]?.Length ?? 0} values; expected {windowValues} ({windowValues / ingest.FrameValues} frames × {ingest.FrameValues} channels ax ay az gx gy gz, interleaved).");
                }

                windows.Add(w);
            }

            streamId = body.StreamId ?? "";
        }
        else
        {
            return Results.Problem(statusCode: 415, detail: $"Send windows as application/json or raw float32 as {OctetStream}.");
        }

        if (windows.Count > options.Value.MaxWindowsPerRequest)
        {
            return Results.Problem(statusCode: 413, detail: $"{windows.Count} windows in one request; at most {options.Value.MaxWindowsPerRequest} are accepted.");
        }

        if (streamId.Length > 256)
        {
            return Results.Problem(statusCode: 400, detail: "stream_id is longer than 256 characters.");
        }

        // Without a stream id every request is its own routing key (the canary share applies per request).
        var key = streamId.Length > 0 ? streamId : "request:" + request.HttpContext.TraceIdentifier;
        var tasks = windows.Select(w => controller.PredictAsync(key, w, ct).AsTask()).ToArray();
        var predictions = await Task.WhenAll(tasks);
        return Results.Ok(new { predictions = predictions.Select(p => ToJson(p, null)).ToArray() });
    }

    private static async Task<IResult> IngestAsync(string streamId, HttpRequest request, StreamIngest ingest, CancellationToken ct)
    {
        if (streamId.Length is 0 or > 256)
        {
            return Results.Problem(statusCode: 400, detail: "The stream id must have 1 to 256 characters.");
        }

        float[] samples;
        if (IsOctetStream(request))
        {
            samples = await ReadFloat32Async(request, ct);
        }
        else if (request.HasJsonContentType())
        {
            var (body, error) = await ServiceJson.ReadAsync<SamplesRequest>(request, "{\"samples\": [ax, ay, az, gx, gy, gz, …]}", ct);
            if (error is not null)
            {
                return error;
            }

            if (body!.Samples is not { } values)
            {
                return Results.Problem(statusCode: 400, detail: "'samples' is missing; expected interleaved frames [ax, ay, az, gx, gy, gz, …].");
            }

            samples = values;
        }
        else
        {
            return Results.Problem(statusCode: 415, detail: $"Send samples as application/json or raw float32 as {OctetStream}.");
        }

        if (samples.Length == 0 || samples.Length % ingest.FrameValues != 0)
        {
            return Results.Problem(statusCode: 400, detail: $"{samples.Length} values is not a whole number of frames; expected a positive multiple of {ingest.FrameValues} (ax ay az gx gy gz).");
        }

        var completed = await ingest.AppendAsync(streamId, samples, ct);
        return Results.Ok(new
        {
            stream_id = streamId,
            frames = samples.Length / ingest.FrameValues,
            predictions = completed.Select(c => ToJson(c.Prediction, c.StartFrame)).ToArray(),
        });
    }

    private static bool IsOctetStream(HttpRequest request) =>
        request.ContentType is { } ct && ct.StartsWith(OctetStream, StringComparison.OrdinalIgnoreCase);

    private static async Task<float[]> ReadFloat32Async(HttpRequest request, CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, ct);
        if (buffer.Length % 4 != 0)
        {
            throw new BadHttpRequestException($"The body has {buffer.Length} bytes, not a whole number of float32 values (4 bytes each).");
        }

        var bytes = buffer.GetBuffer().AsSpan(0, (int)buffer.Length);
        var values = new float[bytes.Length / 4];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.Slice(i * 4, 4));
        }

        return values;
    }

    private static object ToJson(Prediction p, long? startFrame) => new
    {
        start_frame = startFrame,
        label = p.Label,
        class_index = p.ClassIndex,
        confidence = p.Confidence,
        entropy = p.Entropy,
        uncertain = p.IsUncertain,
        model_version = p.ModelVersion,
        probabilities = p.Probabilities.ToArray(),
    };

    private sealed record PredictRequest(
        [property: JsonPropertyName("stream_id")] string? StreamId,
        [property: JsonPropertyName("windows")] float[]?[]? Windows);

    private sealed record SamplesRequest([property: JsonPropertyName("samples")] float[]? Samples);
}

internal static class ServiceJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    /// <summary>
    /// Reads a JSON body, turning every client mistake into problem details instead of an exception:
    /// not JSON or an unsupported charset (415), malformed or mistyped JSON, or <c>null</c> (400).
    /// </summary>
    public static async Task<(T? Value, IResult? Error)> ReadAsync<T>(HttpRequest request, string expected, CancellationToken ct)
        where T : class
    {
        if (!request.HasJsonContentType())
        {
            return (null, Results.Problem(statusCode: 415, detail: $"Send the body as application/json: {expected}."));
        }

        try
        {
            var value = await request.ReadFromJsonAsync<T>(Options, ct);
            return value is null
                ? (null, Results.Problem(statusCode: 400, detail: $"The body is null; expected {expected}."))
                : (value, null);
        }
        catch (JsonException ex)
        {
            return (null, Results.Problem(statusCode: 400, title: "Malformed JSON", detail: $"{ex.Message} Expected {expected}."));
        }
        catch (InvalidOperationException ex) when (request.ContentType?.Contains("charset", StringComparison.OrdinalIgnoreCase) == true)
        {
            // ReadFromJsonAsync refuses charsets it cannot transcode (e.g. utf-7, unknown names).
            return (null, Results.Problem(statusCode: 415, detail: $"{ex.Message} Send UTF-8 JSON."));
        }
    }
}
