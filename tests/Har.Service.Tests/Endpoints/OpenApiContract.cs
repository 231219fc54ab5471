using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;

namespace Har.Service.Tests.Endpoints;

/// <summary>
/// The service's OpenAPI document (<c>GET /openapi/v1.json</c>) as a contract a client holds the service to: which
/// statuses an operation declares, with which media types, and a JSON Schema check (JsonSchema.Net; OpenAPI 3.1 schemas
/// are JSON Schema draft 2020-12) of an answer against the schema the document declares for its status. Objects are
/// checked strictly: a member the schema does not name fails (<c>additionalProperties: false</c> is added to every object
/// schema with properties but the problem details, which RFC 9457 lets an answer extend), so a schema that misses a
/// member the service writes is found as surely as one that names a member it does not write.
/// </summary>
internal sealed class OpenApiContract
{
    private const string ProblemSchema = "ProblemDetails";

    private readonly JsonObject _defs;
    private readonly BuildOptions _options = new() { SchemaRegistry = new SchemaRegistry() };
    private readonly Dictionary<string, JsonSchema> _schemas = new(StringComparer.Ordinal);

    private OpenApiContract(JsonObject document)
    {
        Document = document;

        // The component schemas as the $defs of each schema checked: "#/components/schemas/X" becomes "#/$defs/X".
        var strict = JsonNode.Parse(document["components"]!["schemas"]!.ToJsonString().Replace("\"#/components/schemas/", "\"#/$defs/", StringComparison.Ordinal))!.AsObject();
        foreach (var (name, schema) in strict)
        {
            if (name != ProblemSchema)
            {
                Strict(schema);
            }
        }

        _defs = strict;
    }

    /// <summary>The document.</summary>
    public JsonObject Document { get; }

    /// <summary>The operations (<c>GET /v1/models</c> …) a success answer was checked for.</summary>
    public HashSet<string> Covered { get; } = new(StringComparer.Ordinal);

    /// <summary>Every operation of the document: method (upper case), path and the operation object.</summary>
    public IEnumerable<(string Method, string Path, JsonObject Operation)> Operations =>
        Document["paths"]!.AsObject().SelectMany(p => p.Value!.AsObject().Select(o => (o.Key.ToUpperInvariant(), p.Key, o.Value!.AsObject())));

    public static async Task<OpenApiContract> LoadAsync(HttpClient client, CancellationToken ct)
    {
        using var response = await client.GetAsync("/openapi/v1.json", ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode} {text}");
        return new OpenApiContract(JsonNode.Parse(text)!.AsObject());
    }

    /// <summary>The operation of a method and a path template (<c>/v1/models/{version}</c>).</summary>
    public JsonObject Operation(string method, string path)
    {
        var item = Document["paths"]![path] ?? throw new Xunit.Sdk.XunitException($"the document has no path {path}");
        return item[method.ToLowerInvariant()]?.AsObject() ?? throw new Xunit.Sdk.XunitException($"the document has no {method} {path}");
    }

    /// <summary>The schema node a <c>$ref</c> points at (<c>#/components/schemas/X</c>), or the node itself.</summary>
    public JsonObject Resolve(JsonNode schema)
    {
        var node = schema.AsObject();
        while (node["$ref"] is { } reference)
        {
            var pointer = reference.GetValue<string>();
            Assert.StartsWith("#/", pointer, StringComparison.Ordinal);
            JsonNode? target = Document;
            foreach (var part in pointer[2..].Split('/'))
            {
                target = target?[part.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal)];
            }

            node = target?.AsObject() ?? throw new Xunit.Sdk.XunitException($"$ref {pointer} does not resolve");
        }

        return node;
    }

    /// <summary>
    /// Checks an answer against the document: its status is declared for the operation by number (<c>default</c> does not
    /// count), its media type is one the status declares, and its body matches the schema declared for that media type
    /// (JSON: the schema; text: a string; an archive: gzip bytes). A success answer marks the operation covered.
    /// </summary>
    /// <returns>The body as text (bytes as Latin-1 for binary bodies).</returns>
    public async Task<string> AssertConformsAsync(string method, string path, HttpResponseMessage response, CancellationToken ct)
    {
        var bytes = await response.Content.ReadAsByteArrayAsync(ct);
        var status = ((int)response.StatusCode).ToString(CultureInfo.InvariantCulture);
        var mediaType = response.Content.Headers.ContentType?.MediaType;
        var isJson = mediaType?.EndsWith("json", StringComparison.OrdinalIgnoreCase) == true;
        var text = isJson || mediaType?.StartsWith("text/", StringComparison.Ordinal) == true ? System.Text.Encoding.UTF8.GetString(bytes) : System.Text.Encoding.Latin1.GetString(bytes);
        var where = $"{method} {path} answered {status} {mediaType}: {(text.Length > 600 ? text[..600] + "…" : text)}";

        var responses = Operation(method, path)["responses"]!.AsObject();
        var declared = responses[status] ?? throw new Xunit.Sdk.XunitException($"{where}\nThe document declares no {status} for {method} {path} (declared: {string.Join(", ", responses.Select(r => r.Key))}).");
        var content = declared["content"]?.AsObject();
        if (content is null || content.Count == 0)
        {
            Assert.True(bytes.Length == 0, $"{where}\nThe document declares no content for {status}, yet the answer has a body.");
            return text;
        }

        Assert.True(mediaType is not null, $"{where}\nThe answer has a body but no Content-Type.");
        var media = content.FirstOrDefault(c => string.Equals(c.Key.Split(';')[0].Trim(), mediaType, StringComparison.OrdinalIgnoreCase));
        Assert.True(media.Value is not null, $"{where}\nContent-Type {mediaType} is not among the declared {string.Join(", ", content.Select(c => c.Key))}.");
        var schema = media.Value!["schema"] ?? throw new Xunit.Sdk.XunitException($"{where}\n{status} {media.Key} is declared without a schema.");
        if (isJson)
        {
            using var json = JsonDocument.Parse(bytes);
            var errors = Validate(schema, json.RootElement);
            Assert.True(errors.Count == 0, $"{where}\nThe body does not match the schema the document declares for {status} {media.Key}:\n{string.Join("\n", errors.Take(12))}");
        }
        else if (Resolve(schema)["format"]?.GetValue<string>() == "binary" && mediaType == "application/gzip")
        {
            Assert.True(bytes is [0x1f, 0x8b, ..], $"{where}\nThe application/gzip body is not gzip.");
        }
        else
        {
            Assert.Equal("string", Resolve(schema)["type"]?.GetValue<string>());
            Assert.False(string.IsNullOrEmpty(text), $"{where}\nThe {mediaType} body is empty.");
        }

        if (response.IsSuccessStatusCode)
        {
            Covered.Add($"{method} {path}");
        }

        return text;
    }

    /// <summary>What is wrong with <paramref name="instance"/> against <paramref name="schema"/> (a schema of the document), one line per error.</summary>
    public List<string> Validate(JsonNode schema, JsonElement instance)
    {
        var text = schema.ToJsonString().Replace("\"#/components/schemas/", "\"#/$defs/", StringComparison.Ordinal);
        if (!_schemas.TryGetValue(text, out var compiled))
        {
            var root = JsonNode.Parse(text)!.AsObject();
            Strict(root);
            root["$defs"] = _defs.DeepClone();
            compiled = JsonSchema.Build(JsonDocument.Parse(root.ToJsonString()).RootElement, _options, new Uri($"https://har.test/schemas/{_schemas.Count}"));
            _schemas[text] = compiled;
        }

        var result = compiled.Evaluate(instance, new EvaluationOptions { OutputFormat = OutputFormat.List });
        return result.IsValid
            ? []
            : [.. (result.Details ?? []).Where(d => d.Errors is { Count: > 0 }).SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation} ({d.EvaluationPath}): {e.Key}: {e.Value}"))];
    }

    /// <summary>Adds <c>additionalProperties: false</c> to every object schema with properties that does not say otherwise.</summary>
    private static void Strict(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                if (o["properties"] is JsonObject && !o.ContainsKey("additionalProperties"))
                {
                    o["additionalProperties"] = false;
                }

                foreach (var (_, child) in o.ToList())
                {
                    Strict(child);
                }

                break;
            case JsonArray a:
                foreach (var child in a)
                {
                    Strict(child);
                }

                break;
        }
    }
}
