namespace Har.Deployment;

/// <summary>A comparison of two predicted-class mixes.</summary>
/// <param name="ChiSquare">Pearson's chi-square statistic of the 2 × K homogeneity table (classes absent from both mixes dropped).</param>
/// <param name="DegreesOfFreedom">K − 1 over the classes present in either mix.</param>
/// <param name="PValue">The chi-square upper-tail p-value.</param>
/// <param name="JensenShannonDistance">The Jensen–Shannon distance (base 2, in [0, 1]) between the two mixes.</param>
internal readonly record struct ClassMixComparison(double ChiSquare, int DegreesOfFreedom, double PValue, double JensenShannonDistance);

/// <summary>The seam to the categorical tests of the predicted-class mix (chi-square and Jensen–Shannon).</summary>
internal interface IClassMixTest
{
    ClassMixComparison Compare(IReadOnlyList<long> reference, IReadOnlyList<long> current);
}
