using System.Text.Json.Serialization;

namespace Har.Drift;

/// <summary>What the data say about drift (per channel, per output test, or overall).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<DriftVerdict>))]
public enum DriftVerdict
{
    /// <summary>Too little (finite) data to judge: fewer samples than the configured minimum.</summary>
    Insufficient,

    /// <summary>No test is both significant (after correction) and above its effect-size floor.</summary>
    Stable,

    /// <summary>At least one test is significant after multiple-testing correction and its effect exceeds the floor.</summary>
    Drifted,
}

/// <summary>The multiple-testing correction applied across all channels and tests of one scoring.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<MultipleTestingCorrection>))]
public enum MultipleTestingCorrection
{
    /// <summary>Holm's step-down procedure (controls the family-wise error rate).</summary>
    Holm,

    /// <summary>Benjamini–Hochberg (controls the false discovery rate).</summary>
    BenjaminiHochberg,
}
