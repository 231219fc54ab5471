namespace Har.Inference;

/// <summary>The model's answer for one window.</summary>
/// <param name="ClassIndex">Index of the most probable class in <see cref="ModelCard.Labels"/>.</param>
/// <param name="Label">Name of the most probable class.</param>
/// <param name="Confidence">Probability of the most probable class, in [0, 1].</param>
/// <param name="Entropy">Shannon entropy of the probabilities in nats, in [0, ln K].</param>
/// <param name="IsUncertain"><see langword="true"/> when <paramref name="Confidence"/> is below the model's uncertainty threshold.</param>
/// <param name="Probabilities">
/// The class probabilities (length K, sum 1). From the span-based
/// <see cref="HarModel.Predict(ReadOnlySpan{float}, Memory{float}, Span{Prediction})"/> this is a slice of the
/// caller's buffer (no copy); from the other overloads it is owned by the prediction.
/// </param>
/// <param name="Latency">Time spent in the model for the batch this window was part of (queueing included on the batched path).</param>
/// <param name="ModelVersion">Version of the model that produced the prediction.</param>
public readonly record struct Prediction(
    int ClassIndex,
    string Label,
    float Confidence,
    float Entropy,
    bool IsUncertain,
    ReadOnlyMemory<float> Probabilities,
    TimeSpan Latency,
    string ModelVersion)
{
    /// <summary>Returns the label, confidence, entropy and model, e.g. <c>WALKING 93% (entropy 0.21, model 1.0.0)</c>.</summary>
    /// <returns>A one-line summary.</returns>
    public override string ToString() =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Label} {Confidence:P0} (entropy {Entropy:0.00}{(IsUncertain ? ", uncertain" : string.Empty)}, model {ModelVersion})");
}
