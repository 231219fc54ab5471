namespace Har.Deployment;

/// <summary>Where one stream's windows go under the current plan.</summary>
/// <param name="Version">The version whose predictions are returned to the caller.</param>
/// <param name="ShadowVersion">A version that also receives the windows and whose predictions are only compared, or <see langword="null"/>.</param>
/// <param name="IsCandidate">Whether <paramref name="Version"/> is the plan's candidate.</param>
/// <param name="Bucket">The key's bucket in <c>[0, 10,000)</c>, or -1 when the plan has a single version and no shadow (no hash needed).</param>
internal readonly record struct RouteDecision(string Version, string? ShadowVersion, bool IsCandidate, int Bucket);
