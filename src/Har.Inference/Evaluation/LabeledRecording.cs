namespace Har.Inference;

/// <summary>One continuous labelled recording to score with <see cref="ModelEvaluator"/>.</summary>
/// <param name="Frames">Interleaved frames in sensor units, channels in the card's order.</param>
/// <param name="Labels">
/// The true class per frame as an index into <see cref="ModelCard.Labels"/>, or -1 for a frame that
/// carries no activity (unlabeled).
/// </param>
internal readonly record struct LabeledRecording(ReadOnlyMemory<float> Frames, ReadOnlyMemory<int> Labels);
