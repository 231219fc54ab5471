using System.Collections.Concurrent;
using System.Globalization;
using Har.Inference;
using Microsoft.Extensions.Logging;

namespace Har.Deployment;

/// <summary>
/// The model seam on Har.Inference: one warm <see cref="HarModel"/> per resident version. The bytes
/// that were verified against the registry record are written to a process-private file and loaded
/// from there, so what runs is exactly what was verified (Har.Inference loads from a path).
/// </summary>
internal sealed class HarModelHost : IModelVersionHost
{
    private readonly ConcurrentDictionary<string, Resident> _models = new(StringComparer.Ordinal);
    private readonly Func<HarModelOptions> _options;
    private readonly ILoggerFactory? _loggerFactory;
    private readonly TimeProvider _time;
    private IReadOnlyList<float[]> _smokeWindows;
    private readonly double _minSmokeAgreement;
    private readonly Lazy<DirectoryInfo> _privateDir = new(() => Directory.CreateTempSubdirectory("har-deploy-"));

    public HarModelHost(Func<HarModelOptions> options, IReadOnlyList<float[]> smokeWindows, double minSmokeAgreement, ILoggerFactory? loggerFactory, TimeProvider time)
    {
        _options = options;
        _smokeWindows = smokeWindows;
        _minSmokeAgreement = minSmokeAgreement;
        _loggerFactory = loggerFactory;
        _time = time;
    }

    public ValueTask LoadAsync(VerifiedModelBytes model, CancellationToken cancellationToken)
    {
        if (_models.ContainsKey(model.Model.Version))
        {
            return ValueTask.CompletedTask;
        }

        cancellationToken.ThrowIfCancellationRequested();
        var path = Path.Combine(_privateDir.Value.FullName, $"v{model.Model.Version}-{model.Model.Sha256[..16]}.onnx");
        File.WriteAllBytes(path, model.Bytes);
        HarModel loaded;
        try
        {
            loaded = HarModel.Load(path, _options(), _loggerFactory, _time);
        }
        catch
        {
            File.Delete(path);
            throw;
        }

        if (!string.Equals(ModelVersionName.Normalize(loaded.Version), model.Model.Version, StringComparison.Ordinal))
        {
            loaded.Dispose();
            File.Delete(path);
            throw new ModelIntegrityException($"Registry folder v{model.Model.Version} holds a model whose card says version {loaded.Version}; expected them to agree.");
        }

        if (!_models.TryAdd(model.Model.Version, new Resident(loaded, path, MeasureBaseline(loaded))))
        {
            loaded.Dispose();
            File.Delete(path);
        }

        return ValueTask.CompletedTask;
    }

    public bool IsLoaded(string version) => _models.ContainsKey(version);

    internal HarModel GetModel(string version) => Get(version).Model;

    internal void SetSmokeWindows(IReadOnlyList<float[]> windows) => _smokeWindows = windows;

    public ModelCard GetCard(string version) => Get(version).Model.Card;

    public ValueTask<Prediction> PredictAsync(string version, ReadOnlyMemory<float> window, CancellationToken cancellationToken) =>
        Get(version).Model.PredictAsync(window, cancellationToken);

    public SmokeTestOutcome SmokeTest(string version, string? stableVersion)
    {
        var model = Get(version).Model;
        var stable = stableVersion is not null && _models.TryGetValue(stableVersion, out var s) ? s.Model : null;
        return RunSmokeTest(model, stable, _smokeWindows, _minSmokeAgreement);
    }

    public async ValueTask UnloadAsync(string version)
    {
        if (_models.TryRemove(version, out var resident))
        {
            await resident.Model.DisposeAsync().ConfigureAwait(false);
            File.Delete(resident.Path);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var version in _models.Keys.ToArray())
        {
            await UnloadAsync(version).ConfigureAwait(false);
        }

        if (_privateDir.IsValueCreated && Directory.Exists(_privateDir.Value.FullName))
        {
            _privateDir.Value.Delete(recursive: true);
        }
    }

    /// <summary>
    /// The built-in smoke test: on the known windows (or, without any, on synthetic windows built from the
    /// card: the channel means, and ±1 std oscillations) every output must be a finite probability vector
    /// summing to 1, the same input must give the same output twice, and — when a stable version is
    /// resident — the candidate must agree with it on at least <paramref name="minAgreement"/> of the windows.
    /// </summary>
    internal static SmokeTestOutcome RunSmokeTest(HarModel model, HarModel? stable, IReadOnlyList<float[]> knownWindows, double minAgreement)
    {
        var card = model.Card;
        var windows = knownWindows.Count > 0 ? knownWindows : SyntheticWindows(card);
        var evidence = new Dictionary<string, double> { ["windows"] = windows.Count, ["min_agreement"] = minAgreement };
        var agreements = 0;
        foreach (var window in windows)
        {
            if (window.Length != model.WindowValues)
            {
                return new(false, $"A smoke-test window holds {window.Length} values; model {card} expects {model.WindowValues}.", evidence);
            }

            var first = model.Predict(window);
            var second = model.Predict(window);
            var sum = 0.0;
            foreach (var p in first.Probabilities.Span)
            {
                if (!float.IsFinite(p) || p < 0)
                {
                    return new(false, $"Model {card} produced a probability {p} on a smoke-test window; expected finite values in [0, 1].", evidence);
                }

                sum += p;
            }

            if (Math.Abs(sum - 1) > 1e-3 || (uint)first.ClassIndex >= (uint)card.ClassCount)
            {
                return new(false, string.Create(CultureInfo.InvariantCulture, $"Model {card} produced probabilities summing to {sum:0.######} (class {first.ClassIndex}); expected a distribution over {card.ClassCount} classes."), evidence);
            }

            if (second.ClassIndex != first.ClassIndex || Math.Abs(second.Confidence - first.Confidence) > 1e-5f)
            {
                return new(false, $"Model {card} gave different outputs for the same window; expected deterministic inference.", evidence);
            }

            if (stable is not null && stable.Predict(window).ClassIndex == first.ClassIndex)
            {
                agreements++;
            }
        }

        if (stable is not null)
        {
            var rate = windows.Count == 0 ? 1 : (double)agreements / windows.Count;
            evidence["agreement"] = rate;
            if (knownWindows.Count > 0 && rate < minAgreement)
            {
                return new(false, string.Create(CultureInfo.InvariantCulture, $"Model {card} agrees with {stable.Card} on {rate:P0} of {windows.Count} known windows; at least {minAgreement:P0} expected."), evidence);
            }
        }

        return new(true, $"Model {card} passed the built-in check on {windows.Count} windows.", evidence);
    }

    internal static List<float[]> SyntheticWindows(ModelCard card)
    {
        var result = new List<float[]>();
        var length = card.WindowLength;
        var channels = card.ChannelCount;
        for (var variant = 0; variant < 4; variant++)
        {
            var w = new float[length * channels];
            for (var t = 0; t < length; t++)
            {
                for (var c = 0; c < channels; c++)
                {
                    var phase = variant == 0 ? 0 : Math.Sin((2 * Math.PI * t * variant / card.SampleRateHz) + c);
                    w[(t * channels) + c] = card.NormalizationMean[c] + (float)(phase * card.NormalizationStd[c]);
                }
            }

            result.Add(w);
        }

        return result;
    }

    private Resident Get(string version) =>
        _models.TryGetValue(version, out var r) ? r : throw new InvalidOperationException($"Model version {version} is not loaded; loaded: {string.Join(", ", _models.Keys)}.");

    public TimeSpan? GetBaselineLatency(string version) => _models.TryGetValue(version, out var r) ? r.Baseline : null;

    /// <summary>The p95 of 40 single-window predictions on synthetic windows after warm-up (real wall time: a property of the machine, not of the rollout clock).</summary>
    internal static TimeSpan MeasureBaseline(HarModel model)
    {
        var windows = SyntheticWindows(model.Card);
        var samples = new long[40];
        var probabilities = new float[model.Card.ClassCount];
        var prediction = new Prediction[1];
        for (var i = 0; i < samples.Length + 5; i++)
        {
            var start = System.Diagnostics.Stopwatch.GetTimestamp();
            model.Predict(windows[i % windows.Count], probabilities, prediction);
            var elapsed = System.Diagnostics.Stopwatch.GetTimestamp() - start;
            if (i >= 5)
            {
                samples[i - 5] = elapsed;
            }
        }

        Array.Sort(samples);
        return TimeSpan.FromSeconds(samples[(int)Math.Ceiling(0.95 * samples.Length) - 1] / (double)System.Diagnostics.Stopwatch.Frequency);
    }

    private sealed record Resident(HarModel Model, string Path, TimeSpan Baseline);
}
