using System.Globalization;

namespace Har.Inference.Models;

/// <summary>
/// The load-time check that a graph's output is what its card's <c>har.output</c> says. The card is written by hand
/// at export, and the two common mistakes are silent otherwise: a graph that returns logits under a card that says
/// probabilities is served with its logits as "probabilities" (confidence 8.7, entropy 0), and a graph that already
/// applies softmax under a card that says logits has softmax applied twice (every prediction near uniform, so
/// uncertain). The check runs a few varied probe windows through the graph once, at load.
/// </summary>
internal static class OutputCheck
{
    /// <summary>The probe windows run (at most; fewer when the batch is smaller).</summary>
    private const int Probes = 8;

    /// <summary>How far a probability may fall outside [0, 1], and a row's sum from 1 (float32 softmax rounding).</summary>
    private const float ProbabilityTolerance = 1e-3f;

    /// <summary>How close to a distribution every row of a logits graph must be to be taken for one.</summary>
    private const float DistributionTolerance = 1e-4f;

    /// <summary>
    /// Fills the first windows of <paramref name="buffer"/> with deterministic probe values (normalized units, in
    /// [-2, 2]; the first window all zeros, the reference mean), runs them and checks the outputs against the card.
    /// </summary>
    /// <exception cref="ModelCardException">The outputs are not finite, or not what <see cref="ModelCard.Output"/> says.</exception>
    public static void Probe(BatchBuffer buffer, ModelCard card, string outputName)
    {
        var rows = Math.Min(Probes, buffer.MaxBatch);
        var state = 0x9E3779B9u;
        for (var r = 0; r < rows; r++)
        {
            var slot = buffer.InputSlot(r);
            if (r == 0)
            {
                slot.Clear();
                continue;
            }

            for (var i = 0; i < slot.Length; i++)
            {
                // xorshift32: the same probes for every load, so a refusal is reproducible.
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                slot[i] = (state / (float)uint.MaxValue * 4f) - 2f;
            }
        }

        var output = buffer.Run(rows);
        Check(output[..(rows * card.ClassCount)], rows, card, outputName);
    }

    /// <summary>Checks <paramref name="rows"/> rows of raw outputs against the card.</summary>
    internal static void Check(ReadOnlySpan<float> output, int rows, ModelCard card, string outputName)
    {
        var k = card.ClassCount;
        var distributions = 0;
        for (var r = 0; r < rows; r++)
        {
            var row = output.Slice(r * k, k);
            var sum = 0.0;
            var min = float.PositiveInfinity;
            var max = float.NegativeInfinity;
            foreach (var v in row)
            {
                if (!float.IsFinite(v))
                {
                    throw new ModelCardException(null, $"Model {card}: the graph's output '{outputName}' holds {Format(v)} for probe window {r + 1} of {rows} run at load; expected finite values.");
                }

                sum += v;
                min = Math.Min(min, v);
                max = Math.Max(max, v);
            }

            var isDistribution = min >= -DistributionTolerance && max <= 1 + DistributionTolerance && Math.Abs(sum - 1) <= DistributionTolerance;
            distributions += isDistribution ? 1 : 0;
            if (card.Output == ModelOutputKind.Probabilities
                && (min < -ProbabilityTolerance || max > 1 + ProbabilityTolerance || Math.Abs(sum - 1) > ProbabilityTolerance))
            {
                throw new ModelCardException(
                    ModelCardKeys.Output,
                    $"Model {card}: card key '{ModelCardKeys.Output}' says 'probabilities', but on probe window {r + 1} of {rows} run at load the graph's output '{outputName}' ranges from {Format(min)} to {Format(max)} and sums to {Format((float)sum)}; expected values in [0, 1] summing to 1. If the graph ends before its softmax, set '{ModelCardKeys.Output}' to 'logits' (Har applies the softmax); otherwise end it with one.");
            }
        }

        if (card.Output == ModelOutputKind.Logits && rows > 1 && distributions == rows)
        {
            throw new ModelCardException(
                ModelCardKeys.Output,
                $"Model {card}: card key '{ModelCardKeys.Output}' says 'logits', but on all {rows} probe windows run at load every row of the graph's output '{outputName}' is already a probability distribution (values in [0, 1] summing to 1): the graph applies its own softmax, and a second one would make every prediction near-uniform and uncertain. Set '{ModelCardKeys.Output}' to 'probabilities', or export the graph without its softmax.");
        }
    }

    private static string Format(float value) => value.ToString("G6", CultureInfo.InvariantCulture);
}
