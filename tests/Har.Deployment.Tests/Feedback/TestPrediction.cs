using System.Reflection;
using Har.Inference;

namespace Har.Deployment.Tests.Feedback;

/// <summary>Builds a <see cref="Prediction"/> as the batcher would (its constructor is internal to Har.Inference).</summary>
internal static class TestPrediction
{
    private static readonly ConstructorInfo Constructor = typeof(Prediction).GetConstructor(
        BindingFlags.Instance | BindingFlags.NonPublic,
        [typeof(int), typeof(string), typeof(float), typeof(float), typeof(bool), typeof(ReadOnlyMemory<float>), typeof(TimeSpan), typeof(string)])
        ?? throw new InvalidOperationException("Prediction's constructor changed; update TestPrediction.");

    public static Prediction Of(int classIndex, string label, string version) =>
        (Prediction)Constructor.Invoke([classIndex, label, 0.9f, 0.1f, false, ReadOnlyMemory<float>.Empty, TimeSpan.FromMilliseconds(1), version]);
}
