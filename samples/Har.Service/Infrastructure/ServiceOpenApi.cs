using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Har.Service.Endpoints;
using Har.Service.Endpoints.Schemas;
using Har.Service.Security;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi;

namespace Har.Service.Infrastructure;

/// <summary>
/// The OpenAPI document (<c>GET /openapi/v1.json</c>, Microsoft.AspNetCore.OpenApi): every minimal-API route with its
/// operationId, parameters, request body, success answers and problem answers (with their schemas), the headers sent
/// and the key it needs (<c>X-Api-Key</c> or <c>Authorization: Bearer</c>), plus the routes that are not minimal-API
/// handlers (<c>/metrics</c>, the document itself). The routes declare what they take and answer with typed metadata
/// (<c>WithName</c>, <c>Produces&lt;T&gt;</c>, <c>ProducesProblem</c>, <see cref="WithRequestBody"/>,
/// <see cref="WithQueryParameters"/>; the types are in <c>Endpoints/ApiSchemas.cs</c>); the transformers here add what
/// every route shares (the key and the refusals of authentication, authorization and the rate limiter, the headers of
/// a status) and turn the types' annotations into schema keywords. <c>--list-routes</c> prints the route table the
/// service maps (from its <see cref="EndpointDataSource"/>) so a test can check that the document lists all of it.
/// </summary>
internal static class ServiceOpenApi
{
    public const string DocumentName = "v1";
    public const string DocumentPath = "/openapi/v1.json";
    public const string ListRoutesSwitch = "--list-routes";

    private const string ApiKeyScheme = "ApiKey";
    private const string BearerScheme = "Bearer";
    private const string ProblemSchema = nameof(ProblemDetails);
    private const string Json = "application/json";
    private const string ProblemJson = "application/problem+json";

    public static WebApplicationBuilder AddServiceOpenApi(this WebApplicationBuilder builder)
    {
        builder.Services.AddOpenApi(DocumentName, o =>
        {
            // Any-JSON values (JsonObject, JsonElement) and bytes (Stream) are written inline ({"type": "object"}, {}, a binary string), not as components.
            o.CreateSchemaReferenceId = t => t.Type == typeof(JsonObject) || t.Type == typeof(JsonElement) || t.Type == typeof(JsonNode) || t.Type == typeof(Stream)
                ? null
                : OpenApiOptions.CreateDefaultSchemaReferenceId(t);
            o.AddDocumentTransformer(async (document, context, ct) =>
            {
                document.Info = new OpenApiInfo
                {
                    Title = "Har.Service",
                    Version = "v1",
                    Description = "Human-activity recognition: predictions, streams, model registry, rollouts, drift and the tamper-evident audit log. Errors are RFC 9457 problem details (application/problem+json, the ProblemDetails schema). docs/service-api.md says what the document cannot: conventions and the meaning of the answers.",
                };

                // The server is wherever the document was fetched from: an absolute URL built from the request's Host
                // header would echo whatever a client (or a cache in front) sent.
                document.Servers = null;
                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
                document.Components.SecuritySchemes[ApiKeyScheme] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.ApiKey,
                    In = ParameterLocation.Header,
                    Name = ApiKeyAuthenticationHandler.Header,
                    Description = "An API key of the service (roles: operator, auditor, predictor, labeller).",
                };
                document.Components.SecuritySchemes[BearerScheme] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.Http,
                    Scheme = "bearer",
                    Description = "The same API keys as X-Api-Key, sent as Authorization: Bearer <key>.",
                };
                await EnsureComponentAsync(document, typeof(ProblemDetails), (t, c) => context.GetOrCreateSchemaAsync(t, null, c), ct);
                AddNonMinimalRoutes(document);
            });
            o.AddSchemaTransformer(TransformSchema);
            o.AddOperationTransformer(TransformOperationAsync);
        });
        return builder;
    }

    /// <summary>Describes the body a route reads itself (from the request stream) in the OpenAPI document.</summary>
    /// <param name="builder">The route.</param>
    /// <param name="description">What the body holds, with an example.</param>
    /// <param name="required">Whether a body must be sent.</param>
    /// <param name="jsonTypes">The schema of the <c>application/json</c> body (several: any of them); none for a route that takes no JSON.</param>
    /// <param name="contentTypes">The media types the route accepts; those other than JSON are bytes (<c>format: binary</c>).</param>
    public static RouteHandlerBuilder WithRequestBody(this RouteHandlerBuilder builder, string description, bool required, Type[] jsonTypes, params string[] contentTypes) =>
        builder.WithMetadata(new RequestBodyDescription(description, required, contentTypes, jsonTypes));

    /// <summary>The problem details (RFC 9457) a route answers besides those every route shares (401, 403, 429: added for all).</summary>
    public static RouteHandlerBuilder ProducesProblems(this RouteHandlerBuilder builder, params int[] statusCodes)
    {
        foreach (var status in statusCodes)
        {
            builder.ProducesProblem(status);
        }

        return builder;
    }

    /// <summary>The query parameters a route reads itself, with their schemas (the route refuses any other).</summary>
    public static RouteHandlerBuilder WithQueryParameters(this RouteHandlerBuilder builder, params QueryParameter[] parameters) =>
        builder.WithMetadata(new QueryParameters(parameters));

    /// <summary>The paging parameters of a list (<see cref="ListQuery"/>: <c>page_size</c>, <c>page</c>), and its filters.</summary>
    public static RouteHandlerBuilder WithPagedQuery(this RouteHandlerBuilder builder, params QueryParameter[] filters) =>
        builder.WithQueryParameters(
        [
            .. filters,
            new QueryParameter("page_size", $"Entries per page, 1 to {ListQuery.MaxPageSize} (default {ListQuery.DefaultPageSize}).", Integer: (1, ListQuery.MaxPageSize, ListQuery.DefaultPageSize)),
            new QueryParameter("page", "The previous response's next_page (an opaque cursor); leave it out for the first page.", MaxLength: ListQuery.MaxCursorLength),
        ]);

    /// <summary>A header a route sends with a status, besides those of the status itself (Location, Retry-After, WWW-Authenticate: added for all).</summary>
    public static RouteHandlerBuilder WithResponseHeader(this RouteHandlerBuilder builder, int statusCode, string name, string description) =>
        builder.WithMetadata(new ResponseHeader(statusCode, name, description));

    /// <summary>Another schema the success answer of <paramref name="statusCode"/> may have (the document says: one of them).</summary>
    public static RouteHandlerBuilder ProducesAlternative<T>(this RouteHandlerBuilder builder, int statusCode) =>
        builder.WithMetadata(new ResponseAlternative(statusCode, typeof(T)));

    public static void MapServiceOpenApi(this WebApplication app) => app.MapOpenApi(DocumentPath).AllowAnonymous();

    /// <summary>The routes the service maps: method and route pattern of every endpoint of its <see cref="EndpointDataSource"/>s.</summary>
    public static IReadOnlyList<(string Method, string Route)> Routes(IEndpointRouteBuilder app) =>
    [
        .. app.DataSources.SelectMany(d => d.Endpoints)
            .OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? ["*"]).Select(m => (Method: m, Route: "/" + e.RoutePattern.RawText!.TrimStart('/'))))
            .Distinct()
            .OrderBy(r => r.Route, StringComparer.Ordinal)
            .ThenBy(r => r.Method, StringComparer.Ordinal),
    ];

    /// <summary>Writes <see cref="Routes"/> as JSON (<c>[{"method": "GET", "route": "/v1/models"}, …]</c>) to standard output.</summary>
    public static void PrintRoutes(IEndpointRouteBuilder app) =>
        Console.Out.WriteLine(JsonSerializer.Serialize(Routes(app).Select(r => new { method = r.Method, route = r.Route })));

    /// <summary>The "Needs:" sentence of an operation: which key its authorization policies ask for.</summary>
    internal static string Needs(IReadOnlyList<string> policies, bool predictRequiresKey) =>
        string.Join("; ", policies.Select(p => p == Roles.PredictPolicy && !predictRequiresKey
            ? "no API key (anonymous callers are served, with their own window budget), or an API key with any role (operator, auditor, predictor or labeller); a key that is sent must be valid"
            : p == Roles.PredictPolicy
                ? "an API key with the predictor, auditor or operator role (Har:Service:PredictRequiresKey is true)"
                : Roles.Describe(p)));

    private static async Task TransformOperationAsync(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken ct)
    {
        var document = context.Document!;
        var metadata = context.Description.ActionDescriptor.EndpointMetadata;
        var predictRequiresKey = context.ApplicationServices.GetRequiredService<IOptions<ServiceOptions>>().Value.PredictRequiresKey;
        var policies = metadata.OfType<IAuthorizeData>().Select(a => a.Policy).OfType<string>().ToArray();
        var needsKey = policies.Length > 0 && !metadata.OfType<IAllowAnonymous>().Any();
        var anonymousServed = !needsKey || (policies is [Roles.PredictPolicy] && !predictRequiresKey);
        if (needsKey)
        {
            operation.Security ??= [];
            operation.Security.Add(new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(ApiKeyScheme, document)] = [] });
            operation.Security.Add(new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(BearerScheme, document)] = [] });
            if (anonymousServed)
            {
                operation.Security.Add(new OpenApiSecurityRequirement()); // {}: a key is optional (anonymous callers have their own budget)
            }

            var needs = Needs(policies, predictRequiresKey);
            operation.Description = string.IsNullOrEmpty(operation.Description) ? $"Needs: {needs}." : $"{operation.Description} Needs: {needs}.";
        }

        Task<IOpenApiSchema> Reference(Type type) => ReferenceAsync(document, type, (t, c) => context.GetOrCreateSchemaAsync(t, null, c), ct);

        if (metadata.OfType<RequestBodyDescription>().FirstOrDefault() is { } body)
        {
            var content = new Dictionary<string, OpenApiMediaType>();
            foreach (var type in body.ContentTypes)
            {
                IOpenApiSchema schema;
                if (type != Json)
                {
                    schema = Binary();
                }
                else if (body.JsonTypes is [var only])
                {
                    schema = await Reference(only);
                }
                else
                {
                    var anyOf = new List<IOpenApiSchema>();
                    foreach (var alternative in body.JsonTypes)
                    {
                        anyOf.Add(await Reference(alternative));
                    }

                    schema = new OpenApiSchema { AnyOf = anyOf };
                }

                content[type] = new OpenApiMediaType { Schema = schema };
            }

            operation.RequestBody = new OpenApiRequestBody { Required = body.Required, Description = body.Description, Content = content };
        }

        foreach (var parameter in metadata.OfType<QueryParameters>().SelectMany(q => q.Parameters))
        {
            operation.Parameters ??= [];
            var existing = operation.Parameters.OfType<OpenApiParameter>().FirstOrDefault(p => p.In == ParameterLocation.Query && p.Name == parameter.Name);
            if (existing is null)
            {
                existing = new OpenApiParameter { Name = parameter.Name, In = ParameterLocation.Query };
                operation.Parameters.Add(existing);
            }

            existing.Description = parameter.Description;
            existing.Required = false;
            existing.Schema = parameter.Integer is var (minimum, maximum, defaultValue)
                ? new OpenApiSchema
                {
                    Type = JsonSchemaType.Integer,
                    Format = "int32",
                    Minimum = minimum.ToString(CultureInfo.InvariantCulture),
                    Maximum = maximum.ToString(CultureInfo.InvariantCulture),
                    Default = defaultValue,
                }
                : new OpenApiSchema
                {
                    Type = JsonSchemaType.String,
                    MinLength = parameter.Values is null ? 1 : null, // an empty value is refused as a mistake
                    MaxLength = parameter.MaxLength,
                    Format = parameter.Format,
                    Enum = parameter.Values?.Select(v => (JsonNode)v).ToList(),
                };
        }

        operation.Responses ??= [];

        // A status declared twice with other media types keeps only the last in the API explorer: the others come back here.
        foreach (var produces in metadata.OfType<Microsoft.AspNetCore.Http.Metadata.IProducesResponseTypeMetadata>())
        {
            var key = produces.StatusCode.ToString(CultureInfo.InvariantCulture);
            if (operation.Responses.TryGetValue(key, out var declared) && declared is OpenApiResponse response)
            {
                foreach (var type in produces.ContentTypes)
                {
                    response.Content ??= new Dictionary<string, OpenApiMediaType>();
                    if (!response.Content.ContainsKey(type))
                    {
                        response.Content[type] = new OpenApiMediaType
                        {
                            Schema = produces.Type is null || produces.Type == typeof(Stream) || produces.Type == typeof(byte[]) ? Binary() : await Reference(produces.Type),
                        };
                    }
                }
            }
        }

        foreach (var alternative in metadata.OfType<ResponseAlternative>())
        {
            if (operation.Responses.TryGetValue(alternative.StatusCode.ToString(CultureInfo.InvariantCulture), out var declared)
                && declared is OpenApiResponse { Content: { } content } && content.TryGetValue(Json, out var media) && media.Schema is { } first)
            {
                media.Schema = new OpenApiSchema { OneOf = [first, await Reference(alternative.Type)] };
            }
        }

        // What every route may answer: a presented key is checked everywhere (401), a role where one is needed (403),
        // and the rate limiter runs before every route but health and readiness (429).
        var path = "/" + (context.Description.RelativePath ?? "").TrimEnd('/');
        var problem = await Reference(typeof(ProblemDetails));
        AddProblem(operation, problem, StatusCodes.Status401Unauthorized, anonymousServed
            ? "The key sent is not valid (unknown, an empty or malformed header, another scheme, both headers or one twice); a request without a key is served."
            : "No key, or the key sent is not valid (unknown, an empty or malformed header, another scheme, both headers or one twice).");
        if (needsKey && !anonymousServed)
        {
            AddProblem(operation, problem, StatusCodes.Status403Forbidden, "The key does not have the role this operation needs (the detail names the roles).");
        }

        if (path is not ("/health" or "/ready"))
        {
            AddProblem(operation, problem, StatusCodes.Status429TooManyRequests, "The client's request rate (or, for predictions, its window budget or concurrent predictions) is exceeded; retry after Retry-After seconds.");
        }

        foreach (var (status, response) in operation.Responses)
        {
            if (response is OpenApiResponse r)
            {
                Describe(r, status, response.Content?.ContainsKey(ProblemJson) == true);
                foreach (var header in metadata.OfType<ResponseHeader>().Where(h => h.StatusCode.ToString(CultureInfo.InvariantCulture) == status))
                {
                    AddHeader(r, header.Name, header.Description, new OpenApiSchema { Type = JsonSchemaType.String });
                }
            }
        }

        operation.Responses["default"] = new OpenApiResponse
        {
            Description = "Another error (405 for another method, 500 for a damaged audit log …): RFC 9457 problem details whose detail says what was wrong and what is expected.",
            Content = new Dictionary<string, OpenApiMediaType> { [ProblemJson] = new OpenApiMediaType { Schema = problem } },
        };

        // In status order, default last.
        var ordered = operation.Responses.OrderBy(r => r.Key == "default" ? "~" : r.Key, StringComparer.Ordinal).ToList();
        operation.Responses.Clear();
        foreach (var (status, response) in ordered)
        {
            operation.Responses[status] = response;
        }
    }

    /// <summary>Adds a problem answer unless the route declares the status itself.</summary>
    private static void AddProblem(OpenApiOperation operation, IOpenApiSchema problem, int status, string description)
    {
        var key = status.ToString(CultureInfo.InvariantCulture);
        if (!operation.Responses!.ContainsKey(key))
        {
            operation.Responses[key] = new OpenApiResponse
            {
                Description = description,
                Content = new Dictionary<string, OpenApiMediaType> { [ProblemJson] = new OpenApiMediaType { Schema = problem } },
            };
        }
    }

    /// <summary>The headers a status carries, and a description of what the status means here where the framework gave only its name.</summary>
    private static void Describe(OpenApiResponse response, string status, bool problem)
    {
        if (problem && ProblemDescriptions.TryGetValue(status, out var meaning) && (string.IsNullOrEmpty(response.Description) || response.Description == ReasonPhrase(status)))
        {
            response.Description = meaning;
        }

        switch (status)
        {
            case "201" or "202":
                AddHeader(response, "Location", "The path of what was created (or of the rollout started).", new OpenApiSchema { Type = JsonSchemaType.String, Format = "uri-reference" });
                break;
            case "401":
                AddHeader(response, "WWW-Authenticate", "The schemes the service accepts: Bearer, and ApiKey in the X-Api-Key header.", new OpenApiSchema { Type = JsonSchemaType.String });
                break;
            case "429":
                AddHeader(response, "Retry-After", "Seconds to wait before retrying.", new OpenApiSchema { Type = JsonSchemaType.Integer, Minimum = "1" });
                break;
            case "503" when problem:
                AddHeader(response, "Retry-After", "Seconds to wait before retrying.", new OpenApiSchema { Type = JsonSchemaType.Integer, Minimum = "1" });
                break;
        }
    }

    private static string ReasonPhrase(string status) =>
        Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(int.Parse(status, CultureInfo.InvariantCulture));

    private static readonly Dictionary<string, string> ProblemDescriptions = new(StringComparer.Ordinal)
    {
        ["400"] = "The request is invalid: the detail names the parameter or member and what is expected. Nothing was changed.",
        ["404"] = "No such resource (the detail says what is missing).",
        ["409"] = "The request conflicts with the state (the detail says why): nothing was changed.",
        ["413"] = "The body (or the windows or frames in it) is larger than the service accepts.",
        ["415"] = "The media type or charset of the body is not one this route reads (the detail says what to send).",
        ["422"] = "The model is refused (its card, its tensors or its integrity; the detail says why).",
        ["503"] = "Storage (the audit log, the registry) or capacity is unavailable for now: retry after Retry-After seconds.",
    };

    private static void AddHeader(OpenApiResponse response, string name, string description, OpenApiSchema schema)
    {
        response.Headers ??= new Dictionary<string, IOpenApiHeader>();
        response.Headers.TryAdd(name, new OpenApiHeader { Description = description, Schema = schema });
    }

    private static OpenApiSchema Binary() => new() { Type = JsonSchemaType.String, Format = "binary" };

    /// <summary>A reference to the component schema of <paramref name="type"/>, created when no route declared it yet.</summary>
    private static async Task<IOpenApiSchema> ReferenceAsync(OpenApiDocument document, Type type, Func<Type, CancellationToken, Task<OpenApiSchema>> create, CancellationToken ct)
    {
        await EnsureComponentAsync(document, type, create, ct);
        return new OpenApiSchemaReference(type.Name, document);
    }

    private static async Task EnsureComponentAsync(OpenApiDocument document, Type type, Func<Type, CancellationToken, Task<OpenApiSchema>> create, CancellationToken ct)
    {
        document.Components ??= new OpenApiComponents();
        document.Components.Schemas ??= new Dictionary<string, IOpenApiSchema>();
        if (!document.Components.Schemas.ContainsKey(type.Name))
        {
            document.Components.Schemas[type.Name] = await create(type, ct);
        }
    }

    /// <summary>
    /// Turns the schema types' annotations into schema keywords, and writes numbers as numbers: the web JSON defaults
    /// read a number from a string too, which the generator describes as <c>["number", "string"]</c> with a pattern;
    /// the service writes numbers, and its bodies are read with their own options.
    /// </summary>
    private static Task TransformSchema(OpenApiSchema schema, OpenApiSchemaTransformerContext context, CancellationToken ct)
    {
        if (schema.Type is { } type && (type & (JsonSchemaType.Number | JsonSchemaType.Integer)) != 0 && (type & JsonSchemaType.String) != 0)
        {
            schema.Type = type & ~JsonSchemaType.String;
            schema.Pattern = null;
        }

        if (schema.Type is null && schema.Enum is { Count: > 0 } values && values.All(v => v is JsonValue value && value.GetValueKind() == JsonValueKind.String))
        {
            schema.Type = JsonSchemaType.String;
        }

        var attributes = context.JsonPropertyInfo?.AttributeProvider
            ?? (context.ParameterDescription?.ParameterDescriptor as Microsoft.AspNetCore.Mvc.Infrastructure.IParameterInfoParameterDescriptor)?.ParameterInfo;
        if (attributes is not null)
        {
            var names = attributes.GetCustomAttributes(typeof(EnumDataTypeAttribute), inherit: false).OfType<EnumDataTypeAttribute>().Select(e => Enum.GetNames(e.EnumType))
                .Concat(attributes.GetCustomAttributes(typeof(AllowedValuesAttribute), inherit: false).OfType<AllowedValuesAttribute>().Select(a => a.Values.OfType<string>().ToArray()))
                .FirstOrDefault();
            if (names is not null)
            {
                schema.Enum = [.. names.Select(n => (JsonNode)n)];
                if (schema.Type is { } t && (t & JsonSchemaType.Null) != 0)
                {
                    schema.Enum.Add(null!);
                }
            }
        }

        if (context.JsonPropertyInfo is null && context.JsonTypeInfo.Type.GetCustomAttributes(typeof(RequiredAlternativesAttribute), inherit: false) is [RequiredAlternativesAttribute alternatives])
        {
            List<IOpenApiSchema> groups = [.. alternatives.Groups.Select(g => (IOpenApiSchema)new OpenApiSchema { Required = new HashSet<string>(g.Split(',')) })];
            if (alternatives.Exclusive)
            {
                schema.OneOf = groups;
            }
            else
            {
                schema.AnyOf = groups;
            }
        }

        if (context.JsonPropertyInfo is null && context.JsonTypeInfo.Type == typeof(ProblemDetails))
        {
            // As the service writes them: members that have no value are left out (never null); traceId on every one.
            schema.Description = "RFC 9457 problem details: title and status always, type, detail (what was wrong and what is expected) and instance (the path) on every answer of the service's own, traceId; other members add to them (e.g. reason).";
            schema.Required = new HashSet<string> { "title", "status" };
            schema.Properties ??= new Dictionary<string, IOpenApiSchema>();
            schema.Properties["type"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "A URI reference that identifies the problem type." };
            schema.Properties["title"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "A short summary of the problem type." };
            schema.Properties["status"] = new OpenApiSchema { Type = JsonSchemaType.Integer, Format = "int32", Minimum = "400", Maximum = "599", Description = "The HTTP status code." };
            schema.Properties["detail"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "What was wrong, and what is expected." };
            schema.Properties["instance"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "The request's path (URI-escaped, bounded)." };
            schema.Properties["traceId"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "The request's trace id (in the service's log)." };
        }

        return Task.CompletedTask;
    }

    /// <summary>Routes that are not minimal-API handlers, so the API explorer does not describe them.</summary>
    private static void AddNonMinimalRoutes(OpenApiDocument document)
    {
        document.Paths ??= [];
        document.Paths["/metrics"] = Get(
            document,
            "getMetrics",
            "Prometheus metrics",
            "The Prometheus text exposition of every Har and ASP.NET Core metric (never rate limited). Anonymous; a key that is sent must be valid.",
            "text/plain; version=0.0.4",
            new OpenApiSchema { Type = JsonSchemaType.String, Description = "The Prometheus text exposition format 0.0.4." },
            rateLimited: false);
        document.Paths[DocumentPath] = Get(
            document,
            "getOpenApiDocument",
            "This OpenAPI document",
            "The OpenAPI 3.1 description of every route of the service. Anonymous; a key that is sent must be valid.",
            Json,
            new OpenApiSchema { Type = JsonSchemaType.Object, Description = "An OpenAPI 3.1 document." },
            rateLimited: true);
    }

    private static OpenApiPathItem Get(OpenApiDocument document, string operationId, string summary, string description, string contentType, OpenApiSchema schema, bool rateLimited)
    {
        var problem = new OpenApiSchemaReference(ProblemSchema, document);
        var responses = new OpenApiResponses
        {
            ["200"] = new OpenApiResponse
            {
                Description = "OK",
                Content = new Dictionary<string, OpenApiMediaType> { [contentType] = new OpenApiMediaType { Schema = schema } },
            },
            ["401"] = new OpenApiResponse
            {
                Description = "The key sent is not valid; a request without a key is served.",
                Content = new Dictionary<string, OpenApiMediaType> { [ProblemJson] = new OpenApiMediaType { Schema = problem } },
            },
            ["405"] = new OpenApiResponse
            {
                Description = "Another method than GET (Allow names the methods).",
                Content = new Dictionary<string, OpenApiMediaType> { [ProblemJson] = new OpenApiMediaType { Schema = problem } },
            },
            ["default"] = new OpenApiResponse
            {
                Description = "Another error: RFC 9457 problem details.",
                Content = new Dictionary<string, OpenApiMediaType> { [ProblemJson] = new OpenApiMediaType { Schema = problem } },
            },
        };
        if (rateLimited)
        {
            responses["429"] = new OpenApiResponse
            {
                Description = "The client's request rate is exceeded; retry after Retry-After seconds.",
                Content = new Dictionary<string, OpenApiMediaType> { [ProblemJson] = new OpenApiMediaType { Schema = problem } },
            };
        }

        foreach (var (status, response) in responses)
        {
            Describe((OpenApiResponse)response, status, status != "200");
        }

        AddHeader((OpenApiResponse)responses["405"], "Allow", "The methods the resource takes.", new OpenApiSchema { Type = JsonSchemaType.String });
        return new OpenApiPathItem
        {
            Operations = new Dictionary<HttpMethod, OpenApiOperation>
            {
                [HttpMethod.Get] = new OpenApiOperation
                {
                    OperationId = operationId,
                    Summary = summary,
                    Description = description,
                    Tags = new HashSet<OpenApiTagReference> { new(HealthEndpoints.Tag, document) },
                    Responses = responses,
                },
            },
        };
    }
}

/// <summary>The body a route reads from the request stream, for its OpenAPI operation (<see cref="ServiceOpenApi.WithRequestBody"/>).</summary>
internal sealed record RequestBodyDescription(string Description, bool Required, string[] ContentTypes, Type[] JsonTypes);

/// <summary>A query parameter a route reads itself: a string (at most <see cref="MaxLength"/> characters, one of <see cref="Values"/>) or, with <see cref="Integer"/>, an integer in a range with a default.</summary>
internal sealed record QueryParameter(string Name, string Description, IReadOnlyList<string>? Values = null, int? MaxLength = null, string? Format = null, (int Minimum, int Maximum, int Default)? Integer = null);

/// <summary>The query parameters of a route (<see cref="ServiceOpenApi.WithQueryParameters"/>).</summary>
internal sealed record QueryParameters(IReadOnlyList<QueryParameter> Parameters);

/// <summary>A header a route sends with a status (<see cref="ServiceOpenApi.WithResponseHeader"/>).</summary>
internal sealed record ResponseHeader(int StatusCode, string Name, string Description);

/// <summary>Another schema of a success answer (<see cref="ServiceOpenApi.ProducesAlternative{T}"/>).</summary>
internal sealed record ResponseAlternative(int StatusCode, Type Type);
