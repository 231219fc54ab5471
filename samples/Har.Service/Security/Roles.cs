namespace Har.Service.Security;

/// <summary>Roles an API key can hold, and the authorization policies built on them.</summary>
public static class Roles
{
    public const string Operator = "operator";
    public const string Auditor = "auditor";
    public const string Predictor = "predictor";

    /// <summary>
    /// Reports ground truth (<c>POST /v1/feedback</c>). Labels outrank the rollout's agreement and class-mix guards,
    /// so this is its own role: a predictor key (often held by many apps or devices) cannot steer a rollout with them.
    /// </summary>
    public const string Labeller = "labeller";

    public const string OperatorPolicy = "har-operator";
    public const string AuditorPolicy = "har-auditor";
    public const string PredictPolicy = "har-predict";
    public const string LabelPolicy = "har-label";

    public static readonly string[] All = [Operator, Auditor, Predictor, Labeller];

    /// <summary>Which key a policy needs, in words (the OpenAPI document and 403 answers say it).</summary>
    /// <param name="policy">An authorization policy name.</param>
    public static string Describe(string policy) => policy switch
    {
        OperatorPolicy => "an API key with the operator role",
        AuditorPolicy => "an API key with the auditor or operator role",
        PredictPolicy => "an API key with the predictor, auditor or operator role when Har:Service:PredictRequiresKey is true (otherwise anonymous, with its own window budget)",
        LabelPolicy => "an API key with the labeller or operator role",
        _ => $"authorization policy '{policy}'",
    };
}
