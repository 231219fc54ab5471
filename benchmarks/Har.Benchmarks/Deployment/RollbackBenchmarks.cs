using BenchmarkDotNet.Attributes;
using Har.Deployment;

namespace Har.Benchmarks.Deployment;

/// <summary>
/// From a failing analysis interval to 100 % of the traffic on the warm champion. Ours: every built-in
/// gate judges the interval (Fail) and the router swaps to the champion-only plan in one atomic exchange; the next
/// routing decision already goes to the champion (persisting and auditing follow). Baseline: the
/// reference procedure's switch, an atomically replaced, fsynced <c>current</c> pointer (what the
/// registry's <c>SetCurrent</c> writes), before any process restart.
/// </summary>
[MemoryDiagnoser]
public class RollbackBenchmarks
{
    private TrafficRouter _router = null!;
    private TrafficPlan _canary = null!;
    private RolloutAnalyzer _analyzer = null!;
    private RolloutObservations _observations = null!;
    private string _root = null!;
    private ModelRegistry _registry = null!;
    private string[] _labels = null!;
    private AnalysisSnapshot _snapshot = null!;

    [GlobalSetup]
    public void Setup()
    {
        _canary = new TrafficPlan("1.0.0", "1.1.0", 5_000, TrafficPlan.SaltFor("bench"), mirrorCandidateToStable: true);
        _router = new TrafficRouter(_canary);
        _analyzer = new RolloutAnalyzer(new AnalysisOptions(), DriftClassMixTest.Instance);
        _observations = new RolloutObservations();
        _labels = ["a", "b", "c", "d", "e"];

        // One failing interval: a third of the candidate's requests fail.
        var latency = TimeSpan.FromMilliseconds(10);
        for (var i = 0; i < 600; i++)
        {
            _observations.RecordPrediction("1.0.0", new PredictionObservation(i % 5, 0.9f, false, latency));
            if (i % 3 == 0)
            {
                _observations.RecordError("1.1.0", latency);
            }
            else
            {
                _observations.RecordPrediction("1.1.0", new PredictionObservation(i % 5, 0.9f, false, latency));
            }
        }

        _snapshot = _observations.TakeSnapshot("1.1.0", "1.0.0", DateTimeOffset.UnixEpoch, _labels);
        if (_analyzer.Evaluate(_snapshot, paired: false).Verdict != GateVerdict.Fail)
        {
            throw new InvalidOperationException("The benchmark interval must fail.");
        }
        _root = Directory.CreateTempSubdirectory("har-bench-rollback-").FullName;
        _registry = new ModelRegistry(_root);
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_root, recursive: true);

    [Benchmark(Baseline = true)]
    public string DurablePointerSwitch()
    {
        // The registry's `current` pointer switch: temp file, fsync, rename, directory fsync.
        _registry.WriteCurrentPointer("1.0.0");
        return "1.0.0";
    }

    [Benchmark]
    public string FailVerdictToChampion()
    {
        _router.Apply(_canary);
        var result = _analyzer.Evaluate(_snapshot, paired: false);
        if (result.Verdict == GateVerdict.Fail)
        {
            _router.Apply(TrafficPlan.Single("1.0.0"));
        }

        return _router.Route("device-1").Version;
    }
}
