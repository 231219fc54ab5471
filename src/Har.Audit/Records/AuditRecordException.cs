namespace Har.Audit;

/// <summary>A record's JSON does not match its published schema (missing or unknown field, wrong type, value out of range).</summary>
public sealed class AuditRecordException : FormatException
{
    /// <summary>Creates the exception.</summary>
    internal AuditRecordException()
    {
        JsonPath = "$";
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What was wrong.</param>
    internal AuditRecordException(string message)
        : base(message)
    {
        JsonPath = "$";
    }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    /// <param name="message">What was wrong.</param>
    /// <param name="innerException">The cause.</param>
    internal AuditRecordException(string message, Exception innerException)
        : base(message, innerException)
    {
        JsonPath = "$";
    }

    /// <summary>Creates the exception for a location in the document.</summary>
    /// <param name="jsonPath">Where the problem is, e.g. <c>$.model.sha256</c>.</param>
    /// <param name="problem">What was wrong and what was expected.</param>
    internal AuditRecordException(string jsonPath, string problem)
        : base($"{jsonPath}: {problem}")
    {
        JsonPath = jsonPath;
    }

    /// <summary>Gets the JSON path of the offending member (<c>$</c> for the document itself).</summary>
    public string JsonPath { get; }
}
