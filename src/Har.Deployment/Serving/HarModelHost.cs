using System.Collections.Concurrent;
using System.Globalization;
using Har.Inference;
using Microsoft.Extensions.Logging;

namespace Har.Deployment;

/// <summary>
/// The model seam on Har.Inference: one warm <see cref="HarModel"/> per resident version, loaded from the
/// registry's own file (no private copy: nothing is left in the temp folder after a stop or a crash), or — when
/// the host registered the same bytes with <c>AddHarInference().AddModel</c> — that keyed instance, shared and
/// never disposed here, so no model is resident twice. The file was verified against the registry record before
/// the load and is hashed again after it, so a file swapped while the session was being created is refused.
/// </summary>
internal sealed class HarModelHost : IModelVersionHost
{
    private readonly ConcurrentDictionary<string, Resident> _models = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Version, string Order), OutputReference> _references = new();
    private readonly HarModelOptions _options;
    private readonly ILoggerFactory? _loggerFactory;
    private readonly TimeProvider _time;
    private readonly ISharedModels? _shared;
    private IReadOnlyList<float[]> _smokeWindows = [];
    private double _minSmokeAgreement = 0.5;

    public HarModelHost(HarModelOptions options, ILoggerFactory? loggerFactory, TimeProvider time, ISharedModels? shared = null)
    {
        _shared = shared;
        _options = options;
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
        var path = model.Model.ModelPath;
        var shared = _shared?.Find(model.Model.Sha256);
        var loaded = shared ?? HarModel.Load(path, _options, _loggerFactory, _time);
        try
        {
            // A shared model's own file was hashed after its load (ISharedModels.Find).
            var after = shared is null ? HashFile(path) : model.Model.Sha256;
            if (!string.Equals(after, model.Model.Sha256, StringComparison.OrdinalIgnoreCase))
            {
                throw new ModelIntegrityException($"The file of version {model.Model.Version} changed while it was being loaded (SHA-256 {after[..16]}…, registered {model.Model.Sha256[..16]}…); refused.");
            }

            if (!string.Equals(ModelVersionName.Normalize(loaded.Version), model.Model.Version, StringComparison.Ordinal))
            {
                throw new ModelIntegrityException($"Registry folder v{model.Model.Version} holds a model whose card says version {loaded.Version}; expected them to agree.");
            }
        }
        catch
        {
            if (shared is null)
            {
                loaded.Dispose();
            }

            throw;
        }

        if (!_models.TryAdd(model.Model.Version, new Resident(loaded, MeasureBaseline(loaded), shared is null)) && shared is null)
        {
            loaded.Dispose();
        }

        return ValueTask.CompletedTask;
    }

    public bool IsLoaded(string version) => _models.ContainsKey(version);

    internal HarModel GetModel(string version) => Get(version).Model;

    public void SetSmokeWindows(IReadOnlyList<float[]> windows, double minAgreement)
    {
        _smokeWindows = windows;
        _minSmokeAgreement = minAgreement;
        _references.Clear();
    }

    internal static string HashFile(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(stream));
    }

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
        foreach (var key in _references.Keys)
        {
            if (key.Version == version || key.Order == version)
            {
                _references.TryRemove(key, out _);
            }
        }

        if (_models.TryRemove(version, out var resident) && resident.Owned)
        {
            await resident.Model.DisposeAsync().ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var version in _models.Keys.ToArray())
        {
            await UnloadAsync(version).ConfigureAwait(false);
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
            if (!Fits(model, window))
            {
                return new(false, $"A smoke-test window holds {window.Length} values; model {card} expects {model.WindowValues}.", evidence);
            }

            var first = model.Predict(For(model, window));
            var second = model.Predict(For(model, window));
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

            if (stable is not null && Fits(stable, window) && ClassOrder.Same(stable.Card.Labels, stable.Predict(For(stable, window)).ClassIndex, card.Labels, first.ClassIndex))
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

    /// <summary>Whether <paramref name="model"/> can read <paramref name="window"/>: one of its windows, or one with more frames of context before it (a pipeline serving versions that read different contexts).</summary>
    internal static bool Fits(HarModel model, float[] window) =>
        window.Length == model.WindowValues || (window.Length > model.WindowValues && (window.Length - model.WindowValues) % model.Card.ChannelCount == 0);

    /// <summary>The part of <paramref name="window"/> that <paramref name="model"/> reads: its last <see cref="HarModel.WindowValues"/> values.</summary>
    internal static ReadOnlySpan<float> For(HarModel model, float[] window) => window.AsSpan(window.Length - Math.Min(window.Length, model.WindowValues));

    internal static List<float[]> SyntheticWindows(ModelCard card)
    {
        var result = new List<float[]>();
        var length = card.ContextFrames + card.WindowLength;
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

    /// <summary>
    /// The version's single-window median service time under the machine's current load: re-measured when the
    /// last measurement is older than <see cref="BaselineMaxAge"/>, for every resident version at once, their calls
    /// interleaved, so the candidate's and the champion's baselines carry the same contention: a busy host adds about
    /// the same absolute time to every inference call, which inflates a fast model's ratio to an idle-time baseline
    /// more than a slow one's (the healthy 0.2 ms CNN was rolled back at 1.54× on a loaded machine), and measured one
    /// after the other in bursts, one version's burst could fall in a quiet moment and the other's in a busy one (the
    /// healthy CNN was rolled back at 1.54× with the champion's traffic median below its own baseline).
    /// The re-measurement runs in the background and this returns the last measurement at once: the calls wait for
    /// a free inference worker like any caller, and on a saturated host (the champion scoring every mirrored window
    /// at a 100 % step) that wait had held the analysis loop for minutes.
    /// </summary>
    public TimeSpan? GetBaselineLatency(string version)
    {
        if (!_models.TryGetValue(version, out var r))
        {
            return null;
        }

        if (System.Diagnostics.Stopwatch.GetElapsedTime(r.Baseline.MeasuredAt) > BaselineMaxAge && Interlocked.CompareExchange(ref _measuring, 1, 0) == 0)
        {
            _ = Task.Factory.StartNew(RemeasureBaselines, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }

        return r.Baseline.Median;
    }

    private void RemeasureBaselines()
    {
        try
        {
            var resident = _models.Values.ToArray();
            var medians = MeasureBaselines([.. resident.Select(m => m.Model)]);
            var now = System.Diagnostics.Stopwatch.GetTimestamp();
            for (var i = 0; i < resident.Length; i++)
            {
                resident[i].Baseline = new(medians[i], now);
            }
        }
        catch (Exception ex) when (ex is ObjectDisposedException or InvalidOperationException or TimeoutException or Microsoft.ML.OnnxRuntime.OnnxRuntimeException)
        {
            // A version was unloaded meanwhile, or a run failed: the last measurements stand until the next attempt.
        }
        finally
        {
            Volatile.Write(ref _measuring, 0);
        }
    }

    /// <summary>How long a baseline measurement stands before the analysis re-measures it.</summary>
    internal static readonly TimeSpan BaselineMaxAge = TimeSpan.FromSeconds(2);

    public OutputReference? GetOutputReference(string version, string inOrderOf)
    {
        if (_smokeWindows.Count == 0 || !_models.TryGetValue(version, out var r))
        {
            return null;
        }

        // Overall and per predicted class: the analysis expects each version's figures for the activities it predicted,
        // counted in the champion's class order as its observations are (ClassOrder).
        // A champion not resident (yet) leaves the version's own order, cached as such.
        var (orderOf, order) = _models.TryGetValue(inOrderOf, out var o) ? (inOrderOf, o.Model.Card.Labels) : (version, r.Model.Card.Labels);
        return _references.GetOrAdd((version, orderOf), _ =>
        {
            var map = ClassOrder.Build(r.Model.Card.Labels, order);
            var n = _smokeWindows.Count;
            var predicted = new int[n];
            var confidence = new float[n];
            var uncertain = new bool[n];
            for (var i = 0; i < n; i++)
            {
                var p = r.Model.Predict(For(r.Model, _smokeWindows[i]));
                predicted[i] = ClassOrder.Translate(map, p.ClassIndex);
                confidence[i] = p.Confidence;
                uncertain[i] = p.IsUncertain;
            }

            return OutputReference.From(Math.Max(order.Count, map is null ? 0 : map.Max() + 1), predicted, confidence, uncertain);
        });
    }

    private int _measuring;

    /// <summary>
    /// Each model's median of 40 single-window predictions on synthetic windows after 5 warm-up calls, the models' calls
    /// interleaved (one call of each in turn), so every model is measured across the same moments of the machine's load.
    /// Each call counts its <see cref="Prediction.ServiceTime"/> (the ONNX run, as the traffic's service times are
    /// measured), not the wall time around it, which includes the wait for a free worker behind queued batches.
    /// </summary>
    internal static TimeSpan[] MeasureBaselines(IReadOnlyList<HarModel> models)
    {
        var windows = models.Select(m => SyntheticWindows(m.Card)).ToArray();
        var samples = models.Select(_ => new long[40]).ToArray();
        var probabilities = models.Select(m => new float[m.Card.ClassCount]).ToArray();
        var prediction = new Prediction[1];
        for (var i = 0; i < 45; i++)
        {
            for (var m = 0; m < models.Count; m++)
            {
                var start = System.Diagnostics.Stopwatch.GetTimestamp();
                models[m].Predict(windows[m][i % windows[m].Count], probabilities[m], prediction);
                var wall = System.Diagnostics.Stopwatch.GetTimestamp() - start;
                if (i >= 5)
                {
                    var service = prediction[0].ServiceTime;
                    samples[m][i - 5] = service > TimeSpan.Zero ? (long)(service.Ticks * (System.Diagnostics.Stopwatch.Frequency / (double)TimeSpan.TicksPerSecond)) : wall;
                }
            }
        }

        return [.. samples.Select(s =>
        {
            Array.Sort(s);
            return TimeSpan.FromSeconds(s[s.Length / 2] / (double)System.Diagnostics.Stopwatch.Frequency);
        })];
    }

    /// <summary>The median of 40 single-window predictions on synthetic windows after warm-up (real wall time: a property of the machine, not of the rollout clock).</summary>
    internal static TimeSpan MeasureBaseline(HarModel model) => MeasureBaselines([model])[0];

    private sealed class Resident(HarModel model, TimeSpan baseline, bool owned)
    {
        public HarModel Model { get; } = model;

        public bool Owned { get; } = owned;

        private volatile BaselineSample _baseline = new(baseline, System.Diagnostics.Stopwatch.GetTimestamp());

        /// <summary>Gets or sets the last single-window median and when it was measured.</summary>
        public BaselineSample Baseline { get => _baseline; set => _baseline = value; }
    }

    /// <summary>A single-window median service time and when it was measured (a <see cref="System.Diagnostics.Stopwatch"/> timestamp).</summary>
    private sealed record BaselineSample(TimeSpan Median, long MeasuredAt);
}
