using System.Text.Json;
using Har.Service.Security;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi;

namespace Har.Service.Infrastructure;

/// <summary>
/// The OpenAPI document (<c>GET /openapi/v1.json</c>, Microsoft.AspNetCore.OpenApi): every minimal-API route with its
/// parameters and the key it needs (<c>X-Api-Key</c> or <c>Authorization: Bearer</c>), plus the routes that are not
/// minimal-API handlers (<c>/metrics</c>, the document itself). <c>--list-routes</c> prints the route table the
/// service maps (from its <see cref="EndpointDataSource"/>) so a test can check that the document lists all of it.
/// </summary>
internal static class ServiceOpenApi
{
    public const string DocumentName = "v1";
    public const string DocumentPath = "/openapi/v1.json";
    public const string ListRoutesSwitch = "--list-routes";

    private const string ApiKeyScheme = "ApiKey";
    private const string BearerScheme = "Bearer";

    public static WebApplicationBuilder AddServiceOpenApi(this WebApplicationBuilder builder)
    {
        builder.Services.AddOpenApi(DocumentName, o =>
        {
            o.AddDocumentTransformer((document, _, _) =>
            {
                document.Info = new OpenApiInfo
                {
                    Title = "Har.Service",
                    Version = "v1",
                    Description = "Human-activity recognition: predictions, streams, model registry, rollouts, drift and the tamper-evident audit log. Errors are RFC 9457 problem details.",
                };
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
                AddNonMinimalRoutes(document);
                return Task.CompletedTask;
            });
            o.AddOperationTransformer((operation, context, _) =>
            {
                var metadata = context.Description.ActionDescriptor.EndpointMetadata;
                var policies = metadata.OfType<IAuthorizeData>().Select(a => a.Policy).OfType<string>().ToArray();
                if (policies.Length > 0 && !metadata.OfType<IAllowAnonymous>().Any())
                {
                    operation.Security ??= [];
                    operation.Security.Add(new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(ApiKeyScheme, context.Document)] = [] });
                    operation.Security.Add(new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(BearerScheme, context.Document)] = [] });
                    if (policies is [Roles.PredictPolicy] && !context.ApplicationServices.GetRequiredService<IOptions<ServiceOptions>>().Value.PredictRequiresKey)
                    {
                        operation.Security.Add(new OpenApiSecurityRequirement()); // {}: a key is optional (anonymous callers have their own budget)
                    }

                    var roles = string.Join("; ", policies.Select(Roles.Describe));
                    operation.Description = string.IsNullOrEmpty(operation.Description) ? $"Needs: {roles}." : $"{operation.Description} Needs: {roles}.";
                }

                if (metadata.OfType<RequestBodyDescription>().FirstOrDefault() is { } body)
                {
                    operation.RequestBody = new OpenApiRequestBody
                    {
                        Required = body.Required,
                        Description = body.Description,
                        Content = body.ContentTypes.ToDictionary(
                            t => t,
                            t => new OpenApiMediaType
                            {
                                Schema = t == "application/json"
                                    ? new OpenApiSchema { Type = JsonSchemaType.Object }
                                    : new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary" },
                            }),
                    };
                }

                // Every refusal is an RFC 9457 problem details document (400, 401, 403, 404, 409, 413, 415, 429, 503 …).
                operation.Responses ??= [];
                operation.Responses["default"] = new OpenApiResponse
                {
                    Description = "An error: RFC 9457 problem details whose detail says what was wrong and what is expected (docs/service-api.md lists the status codes of each route).",
                    Content = new Dictionary<string, OpenApiMediaType> { ["application/problem+json"] = new OpenApiMediaType() },
                };
                return Task.CompletedTask;
            });
        });
        return builder;
    }

    /// <summary>Describes the body a route reads itself (from the request stream) in the OpenAPI document.</summary>
    /// <param name="builder">The route.</param>
    /// <param name="description">What the body holds, with an example.</param>
    /// <param name="required">Whether a body must be sent.</param>
    /// <param name="contentTypes">The media types the route accepts.</param>
    public static RouteHandlerBuilder WithRequestBody(this RouteHandlerBuilder builder, string description, bool required, params string[] contentTypes) =>
        builder.WithMetadata(new RequestBodyDescription(description, required, contentTypes));

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

    /// <summary>Routes that are not minimal-API handlers, so the API explorer does not describe them.</summary>
    private static void AddNonMinimalRoutes(OpenApiDocument document)
    {
        document.Paths ??= [];
        document.Paths["/metrics"] = Get(
            "Prometheus metrics",
            "The Prometheus text exposition of every Har and ASP.NET Core metric (never rate limited).",
            "text/plain; version=0.0.4");
        document.Paths[DocumentPath] = Get(
            "This OpenAPI document",
            "The OpenAPI 3.1 description of every route of the service (anonymous).",
            "application/json");
    }

    private static OpenApiPathItem Get(string summary, string description, string contentType) => new()
    {
        Operations = new Dictionary<HttpMethod, OpenApiOperation>
        {
            [HttpMethod.Get] = new OpenApiOperation
            {
                Summary = summary,
                Description = description,
                Tags = new HashSet<OpenApiTagReference> { new("Har.Service") },
                Responses = new OpenApiResponses
                {
                    ["200"] = new OpenApiResponse
                    {
                        Description = "OK",
                        Content = new Dictionary<string, OpenApiMediaType> { [contentType] = new OpenApiMediaType() },
                    },
                },
            },
        },
    };
}

/// <summary>The body a route reads from the request stream, for its OpenAPI operation (<see cref="ServiceOpenApi.WithRequestBody"/>).</summary>
internal sealed record RequestBodyDescription(string Description, bool Required, string[] ContentTypes);
