using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace Har.Service.Security;

/// <summary>
/// Hides who did what from readers that are not operators or auditors. The model and rollout reads (<c>GET /v1/models</c>,
/// <c>/v1/rollouts</c>, <c>/v1/rollouts/current</c>, <c>/v1/incidents/{id}</c>) are open to predictor keys and, unless
/// <see cref="ServiceOptions.PredictRequiresKey"/>, to anonymous clients. Found from outside: they named the API keys
/// of the operators who started, approved and rolled back rollouts ("started_by": "local-admin", "rolled back by
/// local-admin: …"), which tells an attacker whose key to go after. For such a reader every member that names an
/// actor (<see cref="ActorMembers"/>) is replaced by <see cref="Hidden"/>, and so is every whole-word mention of those
/// names, or of a configured key's name, in the answer's other text (messages, reasons). Operators and auditors see the
/// names; the audit log keeps them.
/// </summary>
internal sealed class ActorNames(ApiKeyStore keys, IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json) : IEndpointFilter
{
    /// <summary>What a hidden name reads as.</summary>
    public const string Hidden = "(hidden: an operator or auditor key sees the name)";

    /// <summary>Members whose value is an actor's name (a key's name, or a person's given with a model).</summary>
    internal static readonly HashSet<string> ActorMembers = new(StringComparer.Ordinal)
    {
        "actor", "started_by", "approved_by", "approvers", "promoted_by", "deployer", "user", "requested_by", "updated_by", "by",
    };

    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var result = await next(context);
        var user = context.HttpContext.User;
        // Answers only: a problem (404, 400) names no actor and keeps its application/problem+json.
        if (user.IsInRole(Roles.Operator) || user.IsInRole(Roles.Auditor) || result is not IValueHttpResult { Value: { } value }
            || result is Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult || (result as IStatusCodeHttpResult)?.StatusCode is >= 300)
        {
            return result;
        }

        var node = JsonSerializer.SerializeToNode(value, value.GetType(), json.Value.SerializerOptions);
        var names = new HashSet<string>(keys.Names, StringComparer.Ordinal);
        Collect(node, names);
        names.RemoveWhere(static n => n.Length < 2);
        var mentions = names.Count == 0 ? null : new Regex($@"(?<![\w.-])(?:{string.Join('|', names.OrderByDescending(n => n.Length).Select(Regex.Escape))})(?![\w-])", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
        var redacted = Redact(node, mentions);
        return Results.Json(redacted, json.Value.SerializerOptions, statusCode: (result as IStatusCodeHttpResult)?.StatusCode);
    }

    /// <summary>Adds the names the actor members hold.</summary>
    private static void Collect(JsonNode? node, HashSet<string> names)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (key, child) in o)
                {
                    if (ActorMembers.Contains(key))
                    {
                        AddStrings(child, names);
                    }
                    else
                    {
                        Collect(child, names);
                    }
                }

                break;
            case JsonArray a:
                foreach (var child in a)
                {
                    Collect(child, names);
                }

                break;
        }
    }

    private static void AddStrings(JsonNode? node, HashSet<string> names)
    {
        if (node is JsonValue v && v.TryGetValue<string>(out var s))
        {
            names.Add(s);
        }
        else if (node is JsonArray a)
        {
            foreach (var child in a)
            {
                AddStrings(child, names);
            }
        }
        else if (node is JsonObject o)
        {
            Collect(o, names);
        }
    }

    /// <summary>A copy of <paramref name="node"/> with the actor members hidden and the names mentioned in other text replaced.</summary>
    private static JsonNode? Redact(JsonNode? node, Regex? mentions)
    {
        switch (node)
        {
            case JsonObject o:
                var copy = new JsonObject();
                foreach (var (key, child) in o)
                {
                    copy[key] = ActorMembers.Contains(key) && child is JsonValue or JsonArray ? HideAll(child) : Redact(child, mentions);
                }

                return copy;
            case JsonArray a:
                return new JsonArray([.. a.Select(child => Redact(child, mentions))]);
            case JsonValue v when mentions is not null && v.TryGetValue<string>(out var s):
                return JsonValue.Create(mentions.Replace(s, Hidden));
            default:
                return node?.DeepClone();
        }
    }

    /// <summary>An actor member's value hidden: a name becomes <see cref="Hidden"/>, a list of names a list of as many.</summary>
    private static JsonNode? HideAll(JsonNode? node) => node switch
    {
        JsonValue v when v.TryGetValue<string>(out _) => JsonValue.Create(Hidden),
        JsonArray a => new JsonArray([.. a.Select(HideAll)]),
        _ => node?.DeepClone(),
    };
}
