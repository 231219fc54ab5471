namespace Har.Service.Security;

/// <summary>Roles an API key can hold, and the authorization policies built on them.</summary>
public static class Roles
{
    public const string Operator = "operator";
    public const string Auditor = "auditor";
    public const string Predictor = "predictor";

    public const string OperatorPolicy = "har-operator";
    public const string AuditorPolicy = "har-auditor";
    public const string PredictPolicy = "har-predict";

    public static readonly string[] All = [Operator, Auditor, Predictor];
}
