namespace Har.Drift;

/// <summary>What the reference knows about one input channel over all the training data.</summary>
/// <param name="Name">Channel name (e.g. <c>ax</c>).</param>
/// <param name="Count">Number of training samples summarised.</param>
/// <param name="InnerEdges">Inner edges of the quantile bins (NumPy type-7 quantiles of all training samples).</param>
/// <param name="ReferenceCounts">Training samples per bin.</param>
/// <param name="SortedSample">A bounded sorted sample (evenly spaced order statistics of all training samples).</param>
/// <param name="Scale">Robust scale of the channel (interquartile range, or 1 when degenerate), used to compare quantile sketches.</param>
internal sealed record ChannelReference(string Name, long Count, double[] InnerEdges, long[] ReferenceCounts, double[] SortedSample, double Scale);

/// <summary>
/// One training window summarised per channel: a quantile sketch and an effective sample size. A current window
/// is compared with the training windows that look most like it (same activity mix), not with the pooled data.
/// </summary>
/// <param name="Group">The group the window came from (e.g. the subject); calibration leaves a group out.</param>
/// <param name="Quantiles">Per channel, the sketch: quantiles at (i + ½)/Q, i = 0 … Q − 1.</param>
/// <param name="EffectiveSize">Per channel, the autocorrelation-aware effective sample size of the window.</param>
/// <param name="Gravity">Unit mean accelerometer direction of the window (empty when the channels have no accelerometer).</param>
internal sealed record ReferenceSegment(string Group, double[][] Quantiles, double[] EffectiveSize, double[] Gravity);

/// <summary>Effect-size floors calibrated on the training data (leave-one-group-out), per channel.</summary>
/// <param name="KsFloor">Per channel, the KS D a window must reach to be called drifted.</param>
/// <param name="PsiFloor">Per channel, the PSI a window must reach to be called drifted.</param>
/// <param name="Quantile">The quantile of the leave-one-group-out null distribution the floors were taken at.</param>
/// <param name="Windows">Number of training windows the floors were calibrated on.</param>
internal sealed record CalibratedFloors(double[] KsFloor, double[] PsiFloor, double Quantile, int Windows);
