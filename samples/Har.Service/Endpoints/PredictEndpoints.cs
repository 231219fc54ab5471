using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Har.Deployment;
using Har.Inference;
using Har.Service.Endpoints.Schemas;
using Har.Service.Infrastructure;
using Har.Service.Security;
using Microsoft.Extensions.Options;

namespace Har.Service.Endpoints;

/// <summary>
/// <c>POST /v1/predict</c> (whole windows) and <c>POST /v1/streams/{id}/samples</c> (raw interleaved
/// frames): HTTP only — parse the body into a pooled buffer, hand it to the
/// <see cref="ServingPipeline"/> (windowing, routing, micro-batching, drift feed), write the answers.
/// </summary>
internal static class PredictEndpoints
{
    private const string OctetStream = "application/octet-stream";
    private const string WindowsExpected = "{\"stream_id\": \"…\", \"windows\": [[…], …]}";
    private const string SamplesExpected = "{\"samples\": [ax, ay, az, gx, gy, gz, …]}";

    /// <summary>The OpenAPI tag of the prediction routes.</summary>
    public const string Tag = "Predictions";

    // The window geometry is fixed for the process (the windower is built from the current model at start).
    private static string? s_shape;

    public static void MapPredictEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/predict", PredictAsync).RequireAuthorization(Roles.PredictPolicy)
            .WithName("predictWindows")
            .WithTags(Tag)
            .WithSummary("Predict the activity of whole windows")
            .WithRequestBody($"Whole windows of the current model, each its frames' channels interleaved (ax, ay, az, gx, gy, gz per frame, in the model card's channel order and units): application/json {WindowsExpected} (stream_id optional: windows with one are routed, and analysed, as that stream's), or application/octet-stream: the windows' float32 values, little-endian, back to back (the stream id in X-Stream-Id or ?stream_id). At most Har:Service:MaxWindowsPerRequest windows. JSON only in UTF-8.", true, [typeof(PredictRequest)], "application/json", OctetStream)
            .WithQueryParameters(new QueryParameter("stream_id", "With an application/octet-stream body: the windows' stream, as the JSON body's stream_id (the X-Stream-Id header takes precedence).", MaxLength: RequestBodies.MaxStreamIdLength))
            .Produces<PredictionsResponse>(StatusCodes.Status200OK)
            .ProducesProblems(400, 408, 409, 413, 415, 503);
        app.MapPost("/v1/streams/{streamId}/samples", IngestAsync).RequireAuthorization(Roles.PredictPolicy)
            .WithName("appendStreamSamples")
            .WithTags(Tag)
            .WithSummary("Append raw frames to a stream and predict the windows they complete")
            .WithRequestBody($"Raw frames of the stream, any number (the service cuts the windows): application/json {SamplesExpected}, or application/octet-stream: float32 values, little-endian, frames interleaved in the model card's channel order. JSON only in UTF-8.", true, [typeof(SamplesRequest)], "application/json", OctetStream)
            .Produces<StreamPredictionsResponse>(StatusCodes.Status200OK)
            .ProducesProblems(400, 408, 409, 413, 415, 503);
    }

    private static async Task PredictAsync(HttpContext context, ServingPipeline pipeline, IOptions<ServiceOptions> options, WindowBudget budget, StreamQuota quota, CapacityShares shares, CancellationToken ct)
    {
        var request = context.Request;
        var windowValues = pipeline.Geometry.WindowValues;
        var maxWindows = options.Value.MaxWindowsPerRequest;
        var shape = s_shape ??= pipeline.Geometry.ContextFrames == 0
            ? $"windows of {pipeline.Geometry.WindowLength} frames × {pipeline.Geometry.Channels.Count} channels ax ay az gx gy gz, interleaved"
            : $"windows of {pipeline.Geometry.ContextFrames + pipeline.Geometry.WindowLength} frames ({pipeline.Geometry.ContextFrames} frames of context before the {pipeline.Geometry.WindowLength} labelled) × {pipeline.Geometry.Channels.Count} channels ax ay az gx gy gz, interleaved";
        var octet = IsOctetStream(request);
        if (!octet && UnsupportedJson(request, WindowsExpected) is { } unsupported)
        {
            await unsupported.ExecuteAsync(context);
            return;
        }

        using var body = await RequestBodies.ReadAsync(request, ct);
        var values = new PooledFloats(windowValues * 8);
        try
        {
            string? streamId;
            BodyError? error;
            if (octet)
            {
                error = RequestBodies.ParseFloat32(body.Span, windowValues, shape, ref values);
                if (error is null && values.Count / windowValues > maxWindows)
                {
                    error = new(413, $"{values.Count / windowValues} windows in one request; at most {maxWindows} are accepted.");
                }

                error ??= FirstNonFinite(values.Memory.Span, windowValues, pipeline.Geometry.Channels);

                streamId = request.Headers["X-Stream-Id"].ToString() is { Length: > 0 } h ? h : request.Query["stream_id"].ToString();
            }
            else
            {
                error = RequestBodies.ParseWindowsJson(body.Span, windowValues, maxWindows, shape, ref values, out streamId);
            }

            error ??= RequestBodies.ValidateStreamId(streamId, required: false);

            if (error is not null)
            {
                await error.ToResult().ExecuteAsync(context);
                return;
            }

            // A stream id names a stream the service keeps state for (the predictions held for feedback labels, the
            // device's drift monitor), so it counts against the client's stream quota as a stream append does: without
            // it one anonymous client sent 4,200 one-window predictions with new ids in 20 s and every stream's held
            // predictions were evicted, so the labels that came later joined nothing.
            var count = values.Count / windowValues;
            if (await budget.RefuseIfOverAsync(context, count)
                || (streamId is { Length: > 0 } && await quota.RefuseIfOverAsync(context, streamId, StreamQuota.Use.Prediction)))
            {
                return;
            }

            var predictions = System.Buffers.ArrayPool<Prediction>.Shared.Rent(count);
            try
            {
                if (streamId is { Length: > 0 })
                {
                    shares.BeforeServing(context, streamId, context.RequestServices.GetService<Har.Drift.DeviceDriftMonitor>());
                }

                // Without a stream id every request is its own routing key (the canary share applies per request).
                await pipeline.PredictAsync(streamId, values.Memory, predictions, ct);
                await PredictionJson.WriteAsync(context.Response, predictions.AsSpan(0, count), ct);
            }
            finally
            {
                Array.Clear(predictions, 0, count);
                System.Buffers.ArrayPool<Prediction>.Shared.Return(predictions);
            }
        }
        finally
        {
            values.Dispose();
        }
    }

    private static async Task IngestAsync(string streamId, HttpContext context, ServingPipeline pipeline, IOptions<ServiceOptions> options, WindowBudget budget, StreamQuota quota, CapacityShares shares, CancellationToken ct)
    {
        var request = context.Request;
        if (RequestBodies.ValidateStreamId(streamId, required: true) is { } invalidId)
        {
            await invalidId.ToResult().ExecuteAsync(context);
            return;
        }

        var octet = IsOctetStream(request);
        if (!octet && UnsupportedJson(request, SamplesExpected) is { } unsupported)
        {
            await unsupported.ExecuteAsync(context);
            return;
        }

        using var body = await RequestBodies.ReadAsync(request, ct);
        var values = new PooledFloats(4096);
        try
        {
            var frame = pipeline.Geometry.Channels.Count;
            var error = octet
                ? RequestBodies.ParseFloat32(body.Span, frame, $"whole frames of {frame} values ax ay az gx gy gz", ref values)
                : RequestBodies.ParseSamplesJson(body.Span, ref values);
            if (error is null && (values.Count == 0 || values.Count % frame != 0))
            {
                error = new(400, $"{values.Count} values is not a whole number of frames; expected a positive multiple of {frame} (ax ay az gx gy gz).");
            }

            // Checked before anything is appended: a refused append leaves the stream as it was.
            error ??= RequestBodies.CheckAppendSize(values.Count / frame, pipeline.Geometry.WindowLength, pipeline.Geometry.Stride, options.Value.MaxWindowsPerRequest);

            if (error is not null)
            {
                await error.ToResult().ExecuteAsync(context);
                return;
            }

            // Charged the most windows the append can complete.
            if (await budget.RefuseIfOverAsync(context, (values.Count / frame + pipeline.Geometry.Stride - 1) / pipeline.Geometry.Stride)
                || await quota.RefuseIfOverAsync(context, streamId))
            {
                return;
            }

            shares.BeforeServing(context, streamId, context.RequestServices.GetService<Har.Drift.DeviceDriftMonitor>());
            var completed = await shares.AppendAsync(context, pipeline, streamId, values.Memory, ct);
            await PredictionJson.WriteAsync(context.Response, streamId, values.Count / frame, completed, ct);
        }
        finally
        {
            values.Dispose();
        }
    }

    /// <summary>400 naming the first NaN or infinite value by window, frame and channel (JSON windows are checked as they are read).</summary>
    private static BodyError? FirstNonFinite(ReadOnlySpan<float> values, int windowValues, IReadOnlyList<string> channels)
    {
        if (System.Numerics.Tensors.TensorPrimitives.IsFiniteAll(values))
        {
            return null;
        }

        var i = 0;
        while (float.IsFinite(values[i]))
        {
            i++;
        }

        var inWindow = i % windowValues;
        return new(400, string.Create(CultureInfo.InvariantCulture, $"Window {i / windowValues} frame {inWindow / channels.Count} channel {channels[inWindow % channels.Count]} is {values[i]}; expected finite sensor values. Nothing was predicted."));
    }

    private static bool IsOctetStream(HttpRequest request) =>
        request.ContentType is { } ct && ct.StartsWith(OctetStream, StringComparison.OrdinalIgnoreCase);

    /// <summary>415 unless the body is JSON in UTF-8 (the only encoding JSON may travel in between systems, RFC 8259).</summary>
    private static IResult? UnsupportedJson(HttpRequest request, string expected)
    {
        if (!request.HasJsonContentType())
        {
            return Results.Problem(statusCode: 415, detail: $"Send windows as application/json ({expected}) or raw float32 as {OctetStream}.");
        }

        var charset = Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(request.ContentType, out var media) ? media.Charset.Value : null;
        return charset is null || charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase) || charset.Equals("utf8", StringComparison.OrdinalIgnoreCase)
            ? null
            : Results.Problem(statusCode: 415, detail: $"The body's charset is '{charset}'; send UTF-8 JSON.");
    }
}

/// <summary>Writes prediction responses with a reused <see cref="Utf8JsonWriter"/> straight into the response pipe.</summary>
internal static class PredictionJson
{
    private static readonly JsonEncodedText Predictions = JsonEncodedText.Encode("predictions");
    private static readonly JsonEncodedText StreamId = JsonEncodedText.Encode("stream_id");
    private static readonly JsonEncodedText Frames = JsonEncodedText.Encode("frames");
    private static readonly JsonEncodedText StartFrame = JsonEncodedText.Encode("start_frame");
    private static readonly JsonEncodedText Label = JsonEncodedText.Encode("label");
    private static readonly JsonEncodedText ClassIndex = JsonEncodedText.Encode("class_index");
    private static readonly JsonEncodedText Confidence = JsonEncodedText.Encode("confidence");
    private static readonly JsonEncodedText Entropy = JsonEncodedText.Encode("entropy");
    private static readonly JsonEncodedText Uncertain = JsonEncodedText.Encode("uncertain");
    private static readonly JsonEncodedText ModelVersion = JsonEncodedText.Encode("model_version");
    private static readonly JsonEncodedText Probabilities = JsonEncodedText.Encode("probabilities");

    private static readonly System.Buffers.ArrayBufferWriter<byte> Detached = new(1);

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    /// <summary><c>{"predictions": [{…}, …]}</c> for whole windows (<c>start_frame</c> null).</summary>
    public static Task WriteAsync(HttpResponse response, ReadOnlySpan<Prediction> predictions, CancellationToken ct)
    {
        var writer = Start(response);
        writer.WriteStartObject();
        writer.WriteStartArray(Predictions);
        foreach (ref readonly var p in predictions)
        {
            Write(writer, p, null);
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
        return Finish(response, writer, ct);
    }

    /// <summary><c>{"stream_id": …, "frames": n, "predictions": [{…}, …]}</c> for the windows a stream append completed.</summary>
    public static Task WriteAsync(HttpResponse response, string streamId, int frames, ReadOnlySpan<StreamPrediction> predictions, CancellationToken ct)
    {
        var writer = Start(response);
        writer.WriteStartObject();
        writer.WriteString(StreamId, streamId);
        writer.WriteNumber(Frames, frames);
        writer.WriteStartArray(Predictions);
        foreach (ref readonly var p in predictions)
        {
            Write(writer, p.Prediction, p.StartFrame);
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
        return Finish(response, writer, ct);
    }

    private static Utf8JsonWriter Start(HttpResponse response)
    {
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/json; charset=utf-8";
        var writer = t_writer ??= new Utf8JsonWriter(response.BodyWriter, new JsonWriterOptions { SkipValidation = true });
        writer.Reset(response.BodyWriter);
        return writer;
    }

    private static Task Finish(HttpResponse response, Utf8JsonWriter writer, CancellationToken ct)
    {
        writer.Flush();
        writer.Reset(Detached); // drop the reference to this response's pipe
        var flush = response.BodyWriter.FlushAsync(ct);
        return flush.IsCompletedSuccessfully ? Task.CompletedTask : flush.AsTask();
    }

    private static void Write(Utf8JsonWriter writer, in Prediction p, long? startFrame)
    {
        writer.WriteStartObject();
        if (startFrame is { } start)
        {
            writer.WriteNumber(StartFrame, start);
        }
        else
        {
            writer.WriteNull(StartFrame);
        }

        writer.WriteString(Label, p.Label);
        writer.WriteNumber(ClassIndex, p.ClassIndex);
        writer.WriteNumber(Confidence, p.Confidence);
        writer.WriteNumber(Entropy, p.Entropy);
        writer.WriteBoolean(Uncertain, p.IsUncertain);
        writer.WriteString(ModelVersion, p.ModelVersion);
        writer.WriteStartArray(Probabilities);
        foreach (var v in p.Probabilities.Span)
        {
            writer.WriteNumberValue(v);
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
    }
}

internal static partial class ServiceJson
{
    /// <summary>
    /// What a <see cref="JsonException"/> says, for problem details: a member given twice is named in the service's words
    /// (System.Text.Json names the .NET type it was reading into, which the problem details would hide as "the expected type").
    /// </summary>
    public static string Describe(JsonException exception) =>
        DuplicateMember().Match(exception.Message) is { Success: true } duplicate
            ? $"'{ClientText.Shown(duplicate.Groups["name"].Value, 64)}' is given twice{Where(exception)}; give each member once."
            : UnknownMember().Match(exception.Message) is { Success: true } unknown
                ? $"'{ClientText.Shown(unknown.Groups["name"].Value, 64)}' is not a member of this body{Where(exception)}; remove it."
                : exception.Message;

    /// <summary>
    /// " The body was read as utf-16, …" when the request declares a charset other than UTF-8 (its body was decoded from
    /// it), so that JSON the decoding made unreadable is not mistaken for JSON the client wrote wrong; otherwise empty.
    /// </summary>
    public static string DecodedAs(HttpRequest request) =>
        Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(request.ContentType, out var media) && media.Charset is { HasValue: true } charset
        && !charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase) && !charset.Equals("utf8", StringComparison.OrdinalIgnoreCase)
            ? $" The body was read as {ClientText.Shown(charset.Value!, 32)}, the charset its Content-Type declares."
            : "";

    private static string Where(JsonException exception) =>
        exception.Path is { Length: > 1 } path ? $" (in {ClientText.Shown(path, 64)})" : "";

    [System.Text.RegularExpressions.GeneratedRegex("^Duplicate property '(?<name>.*)' encountered", System.Text.RegularExpressions.RegexOptions.Singleline)]
    private static partial System.Text.RegularExpressions.Regex DuplicateMember();

    [System.Text.RegularExpressions.GeneratedRegex("^The JSON property '(?<name>.*)' could not be mapped to any \\.NET member", System.Text.RegularExpressions.RegexOptions.Singleline)]
    private static partial System.Text.RegularExpressions.Regex UnknownMember();

    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,

        // A member given twice is refused, not read as its last value: {"candidate": "9.9.9", "candidate": "1.1.0"}
        // started a rollout of 1.1.0, while a reviewer, a proxy's filter or a log that reads the first saw 9.9.9.
        AllowDuplicateProperties = false,
    };

    /// <summary>
    /// Reads a JSON body as UTF-8 bytes, checking its media type and charset as <see cref="ReadAsync{T}"/> does (for
    /// routes that parse the bytes themselves): 415 unless the media type is JSON (<c>application/json</c> or a
    /// <c>+json</c> type such as <c>application/problem+json</c>) or for a charset that names no encoding; a body in
    /// another charset than UTF-8 (<c>utf-16</c>, <c>iso-8859-1</c> …) is decoded and re-encoded as UTF-8, and one whose
    /// bytes are not valid in the charset it declares is a 400 (never decoded with replacement characters: what is
    /// recorded is what was sent). UTF-8 bodies are returned as sent.
    /// </summary>
    public static async Task<(byte[]? Utf8, IResult? Error)> ReadUtf8Async(HttpRequest request, string expected, CancellationToken ct)
    {
        if (!request.HasJsonContentType())
        {
            return (null, Results.Problem(statusCode: 415, detail: $"Send the body as application/json: {expected}."));
        }

        var charset = Microsoft.Net.Http.Headers.MediaTypeHeaderValue.Parse(request.ContentType).Charset;
        System.Text.Encoding? encoding = null;
        if (charset.HasValue && !charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase) && !charset.Equals("utf8", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                encoding = System.Text.Encoding.GetEncoding(charset.Value!, System.Text.EncoderFallback.ExceptionFallback, System.Text.DecoderFallback.ExceptionFallback);
            }
            catch (Exception ex) when (ex is ArgumentException or NotSupportedException)
            {
                return (null, Results.Problem(statusCode: 415, detail: $"The body's charset '{ClientText.Shown(charset.Value!, 32)}' is not an encoding this service knows; send UTF-8 JSON (or a charset such as utf-16 or iso-8859-1)."));
            }
        }

        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, ct);
        if (encoding is null)
        {
            return (buffer.ToArray(), null);
        }

        string text;
        try
        {
            text = encoding.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
        }
        catch (System.Text.DecoderFallbackException)
        {
            return (null, Results.Problem(statusCode: 400, title: "Invalid text in JSON", detail: $"The body is not valid {ClientText.Shown(charset.Value!, 32)}, the charset its Content-Type declares; send text in that charset, or UTF-8 JSON."));
        }

        // The decoded text's byte-order mark belonged to the charset, not to the JSON.
        return (System.Text.Encoding.UTF8.GetBytes(text.StartsWith('\uFEFF') ? text[1..] : text), null);
    }

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
            return (null, Results.Problem(statusCode: 400, title: "Malformed JSON", detail: $"{Describe(ex)}{DecodedAs(request)} Expected {expected}."));
        }
        catch (InvalidOperationException ex) when (request.ContentType?.Contains("charset", StringComparison.OrdinalIgnoreCase) == true)
        {
            // ReadFromJsonAsync refuses charsets it cannot transcode (e.g. utf-7, unknown names).
            return (null, Results.Problem(statusCode: 415, detail: $"{ex.Message} Send UTF-8 JSON."));
        }
    }
}
