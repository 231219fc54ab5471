using FsCheck;
using FsCheck.Fluent;
using Har.Inference.Predictions;

namespace Har.Inference.Tests.Predictions;

public sealed class ProbabilityMathTests
{
    private static Arbitrary<float[]> Logits() =>
        Gen.ArrayOf(Gen.Choose(-1_000_000, 1_000_000).Select(i => i / 100f))
            .Where(a => a.Length is >= 1 and <= 40)
            .ToArbitrary();

    [Fact]
    public void StableSoftmax_FiniteLogits_SumsToOneAndNeverNaN()
    {
        Prop.ForAll(Logits(), logits =>
        {
            var p = new float[logits.Length];
            ProbabilityMath.StableSoftmax(logits, p);
            return p.All(float.IsFinite) && p.All(v => v >= 0) && Math.Abs(p.Sum() - 1) < 1e-4;
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void StableSoftmax_IsShiftInvariant()
    {
        var gen = from logits in Logits().Generator
                  from shift in Gen.Choose(-5000, 5000)
                  select (logits, shift: shift / 10f);
        Prop.ForAll(gen.ToArbitrary(), t =>
        {
            var a = new float[t.logits.Length];
            var b = new float[t.logits.Length];
            ProbabilityMath.StableSoftmax(t.logits, a);
            ProbabilityMath.StableSoftmax(t.logits.Select(x => x + t.shift).ToArray(), b);
            return a.Zip(b).All(z => Math.Abs(z.First - z.Second) < 1e-3);
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void StableSoftmax_LogitsPast88_StayFinite()
    {
        float[] logits = [1000f, 999f, -1000f];
        var p = new float[3];
        ProbabilityMath.StableSoftmax(logits, p);

        // Independent check in double: e^0 / (e^0 + e^-1 + e^-2000).
        var expected0 = 1 / (1 + Math.Exp(-1));
        Assert.Equal(expected0, p[0], 5);
        Assert.Equal(1 - expected0, p[1], 5);
        Assert.Equal(0f, p[2]);
    }

    [Fact]
    public void Entropy_IsWithinZeroAndLnK()
    {
        Prop.ForAll(Logits(), logits =>
        {
            var p = new float[logits.Length];
            ProbabilityMath.StableSoftmax(logits, p);
            var h = ProbabilityMath.Entropy(p);
            return h >= 0 && h <= Math.Log(p.Length) + 1e-6;
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Entropy_UniformAndOneHot_AreLnKAndZero()
    {
        Assert.Equal(Math.Log(12), ProbabilityMath.Entropy(Enumerable.Repeat(1f / 12, 12).ToArray()), 5);
        Assert.Equal(0f, ProbabilityMath.Entropy([0f, 1f, 0f]));
    }
}
