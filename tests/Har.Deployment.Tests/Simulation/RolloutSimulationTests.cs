using Har.Deployment.Tests.Support;
using Har.Testing;

namespace Har.Deployment.Tests.Simulation;

/// <summary>
/// Prepares the simulation once per test run: the committed champion (CNN+BiLSTM 1.0.0) and candidate
/// (CNN+BiLSTM 1.2.0, which also reads the 4 s before each window) as real ONNX sessions score every HAPT test
/// window; the seeded rollouts then run on a virtual clock over those predictions.
/// </summary>
public sealed class SimulationFixture : IAsyncLifetime
{
    internal RolloutSimulation? Simulation { get; private set; }

    public string? SkipReason { get; private set; }

    private string? _root;

    public async ValueTask InitializeAsync()
    {
        if (!File.Exists(TestPaths.ChampionModel) || !File.Exists(TestPaths.CandidateModel))
        {
            SkipReason = "Skipped: the trained models (models/har-cnn-bilstm-1.0.0.onnx, models/har-cnn-bilstm-1.2.0.onnx) are not in this checkout.";
            return;
        }

        string data;
        try
        {
            data = TestPaths.RequireSharedData();
        }
        catch (Exception ex) when (ex.GetType().Name.Contains("Skip", StringComparison.Ordinal))
        {
            SkipReason = "Skipped: the shared UCI HAPT data (../shared/data/uci-hapt) is not present on this machine.";
            return;
        }

        _root = Directory.CreateTempSubdirectory("har-sim-test-").FullName;
        var registry = new ModelRegistry(Path.Combine(_root, "registry"));
        registry.Register(TestPaths.ChampionModel);
        var candidate = registry.Register(TestPaths.CandidateModel).Version;
        var options = new RolloutControllerOptions { MetricsRegistry = Prometheus.Metrics.NewCustomRegistry() };
        Simulation = await RolloutSimulation.PrepareAsync(registry, candidate, HaptTestSessions.Load(data), options);
    }

    public async ValueTask DisposeAsync()
    {
        if (Simulation is not null)
        {
            await Simulation.DisposeAsync();
        }

        if (_root is not null)
        {
            Directory.Delete(_root, recursive: true);
        }
    }
}

public sealed class RolloutSimulationTests(SimulationFixture fixture, ITestOutputHelper output) : IClassFixture<SimulationFixture>
{
    [Theory]
    [InlineData(nameof(SimulationFault.Errors))]
    [InlineData(nameof(SimulationFault.Latency))]
    [InlineData(nameof(SimulationFault.BrokenNormalization))]
    public async Task Simulate_FaultyCandidate_RolledBackWithinTwoAnalysisIntervalsInEveryOf50Runs(string faultName)
    {
        var fault = Enum.Parse<SimulationFault>(faultName);
        var simulation = Require();
        var intervals = new List<int>();
        for (var seed = 1; seed <= 50; seed++)
        {
            var result = await simulation.RunAsync(new SimulationScenario { Fault = fault, Seed = seed });
            Assert.True(result.RolledBack, $"seed {seed}: {result.Status.Phase} after {result.AnalysisIntervals} intervals\n{string.Join('\n', result.Decisions.Select(d => d.Summary))}");
            Assert.True(result.AnalysisIntervals <= 2, $"seed {seed}: rolled back after {result.AnalysisIntervals} intervals\n{string.Join('\n', result.Decisions.Select(d => d.Summary))}");
            intervals.Add(result.AnalysisIntervals);
        }

        output.WriteLine($"{fault}: 50/50 rolled back; intervals to rollback: max {intervals.Max()}, mean {intervals.Average():0.00}");
    }

    [Fact]
    public async Task Simulate_HealthyCandidate_PromotedInAtLeast99Of100Runs()
    {
        var simulation = Require();
        var promoted = 0;
        var failures = new List<string>();
        for (var seed = 1; seed <= 100; seed++)
        {
            var result = await simulation.RunAsync(new SimulationScenario { Fault = SimulationFault.None, Seed = seed });
            if (result.Promoted)
            {
                promoted++;
            }
            else
            {
                failures.Add($"seed {seed}: {result.Status.Phase}: {result.Status.Message}");
            }
        }

        output.WriteLine($"healthy {simulation.Candidate}: promoted in {promoted}/100 runs (agreement with the champion {simulation.HealthyAgreement:P1}, p95 {simulation.ChampionLatencyP95.TotalMilliseconds:0.###} ms vs {simulation.CandidateLatencyP95.TotalMilliseconds:0.###} ms)");
        Assert.True(promoted >= 99, $"promoted in {promoted}/100 runs:\n{string.Join('\n', failures)}");
    }

    [Fact]
    public async Task Evaluate_ReducedMatrix_HealthyPromoted_FaultyRolledBack()
    {
        // CI's quick version of `har rollout evaluate`: two traffic conditions (heavy queueing with many devices and
        // 10 % labels a minute late, and few windows per second without labels), every faulty candidate, two seeds each.
        var simulation = Require();
        EvaluationCell[] cells = [new(8, 500, 200, SmokeTestWindows: true, Labels: true), new(64, 500, 10, SmokeTestWindows: true)];
        var results = await RolloutEvaluation.RunAsync(simulation, cells, EvaluationCandidate.All, runs: 2, firstSeed: 1);
        output.WriteLine(RolloutEvaluation.ToMarkdown(results, "RolloutSimulationTests.Evaluate_ReducedMatrix", "reduced matrix"));
        foreach (var r in results)
        {
            if (!r.Counted)
            {
                // A less accurate model without labels: nothing can see it. It must not be taken for a broken one either.
                Assert.Equal(0, r.RolledBack);
            }
            else if (r.Candidate.Healthy)
            {
                Assert.True(r.Promoted == r.Runs, $"healthy @ {r.Cell}: promoted {r.Promoted}/{r.Runs}; undecided gates {string.Join(", ", r.DecidingGates.Keys)}");
            }
            else
            {
                Assert.True(r.RolledBack == r.Runs, $"{r.Candidate.Name} @ {r.Cell}: rolled back {r.RolledBack}/{r.Runs}");
                if (r.Cell.WindowsPerSecond >= 200)
                {
                    Assert.True(r.RolledBackWithinTwo == r.Runs, $"{r.Candidate.Name} @ {r.Cell}: within two intervals of visible {r.RolledBackWithinTwo}/{r.Runs}");
                }
            }
        }
    }

    private RolloutSimulation Require()
    {
        if (fixture.SkipReason is { } reason)
        {
            Assert.Skip(reason);
        }

        return fixture.Simulation!;
    }
}
