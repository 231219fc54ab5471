using System.Numerics.Tensors;

namespace Har.Inference.Predictions;

/// <summary>Softmax, entropy and arg-max over one row of class scores.</summary>
internal static class ProbabilityMath
{
    /// <summary>
    /// Numerically stable softmax: subtracts the row maximum before exponentiating, so any finite
    /// logits give finite probabilities that sum to 1 (<see cref="TensorPrimitives.SoftMax(ReadOnlySpan{float}, Span{float})"/>
    /// alone overflows past about 88).
    /// </summary>
    public static void StableSoftmax(ReadOnlySpan<float> logits, Span<float> probabilities)
    {
        var max = TensorPrimitives.Max(logits);
        TensorPrimitives.Subtract(logits, max, probabilities);
        TensorPrimitives.Exp(probabilities, probabilities);
        var sum = TensorPrimitives.Sum(probabilities);
        TensorPrimitives.Divide(probabilities, sum, probabilities);
    }

    /// <summary>Shannon entropy in nats, <c>-Σ p ln p</c> with <c>0 ln 0 = 0</c>; in [0, ln K].</summary>
    public static float Entropy(ReadOnlySpan<float> probabilities)
    {
        // p ln max(p, tiny): zero probabilities contribute 0 · ln(tiny) = 0 instead of 0 · -∞ = NaN.
        Span<float> logs = probabilities.Length <= 64 ? stackalloc float[probabilities.Length] : new float[probabilities.Length];
        TensorPrimitives.Max(probabilities, 1e-30f, logs);
        TensorPrimitives.Log(logs, logs);
        var h = -TensorPrimitives.Dot(probabilities, logs);
        return Math.Clamp(h, 0f, MathF.Log(probabilities.Length));
    }
}
