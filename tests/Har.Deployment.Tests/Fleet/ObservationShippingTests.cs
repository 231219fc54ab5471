using System.Text.Json;

namespace Har.Deployment.Tests.Fleet;

/// <summary>What a follower ships to the leader (drained, serialised as stored in har_fleet.observations, merged) adds up to the same analysis input as if one replica had seen all the traffic.</summary>
public sealed class ObservationShippingTests
{
    private static readonly string[] Labels = ["a", "b", "c", "d", "e"];

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(20260115)]
    public void DrainedShippedAndMerged_EqualsOneReplicaSeeingEverything(int seed)
    {
        var rng = new Random(seed);
        var start = new DateTimeOffset(2026, 1, 15, 10, 0, 0, TimeSpan.Zero);
        var all = new RolloutObservations(start);
        var leader = new RolloutObservations(start);
        var followers = new[] { new RolloutObservations(start), new RolloutObservations(start) };
        for (var i = 0; i < 3_000; i++)
        {
            var target = rng.Next(3) switch { 0 => leader, 1 => followers[0], _ => followers[1] };
            var version = rng.Next(2) == 0 ? "1.0.0" : "1.1.0";
            switch (rng.Next(5))
            {
                case 3:
                    // The champion mirrored on the candidate's windows: runs, some failed.
                    var mirrored = TimeSpan.FromMicroseconds(rng.Next(1, 200_000));
                    if (rng.Next(10) == 0)
                    {
                        all.RecordMirrorError("1.0.0", mirrored);
                        target.RecordMirrorError("1.0.0", mirrored);
                    }
                    else
                    {
                        all.RecordLatency("1.0.0", mirrored);
                        target.RecordLatency("1.0.0", mirrored);
                    }

                    break;
                case 0:
                    var error = TimeSpan.FromMicroseconds(rng.Next(1, 5_000_000));
                    all.RecordError(version, error);
                    target.RecordError(version, error);
                    break;
                case 1:
                    var pair = new PairedObservation(rng.Next(5), (float)rng.NextDouble(), rng.Next(5) == 0, rng.Next(5), (float)rng.NextDouble(), rng.Next(7) == 0);
                    all.RecordPair(pair);
                    target.RecordPair(pair);
                    break;
                default:
                    var prediction = new PredictionObservation(rng.Next(5), (float)rng.NextDouble(), rng.Next(4) == 0, TimeSpan.FromMicroseconds(rng.Next(1, 200_000)), TimeSpan.FromMicroseconds(rng.Next(0, 50_000)), BatchSize: rng.Next(1, 9));
                    all.RecordPrediction(version, prediction);
                    target.RecordPrediction(version, prediction);
                    break;
            }
        }

        foreach (var follower in followers)
        {
            // As FleetStore writes and reads it (jsonb).
            var json = JsonSerializer.Serialize(follower.Drain(), RolloutStateStore.Json);
            leader.Merge(JsonSerializer.Deserialize<ObservationDelta>(json, RolloutStateStore.Json)!);
            Assert.True(follower.Drain().IsEmpty()); // drained: nothing is shipped twice
        }

        var end = start.AddMinutes(1);
        var expected = all.TakeSnapshot("1.1.0", "1.0.0", end, Labels);
        var merged = leader.TakeSnapshot("1.1.0", "1.0.0", end, Labels);
        foreach (var (e, m) in new[] { (expected.Candidate, merged.Candidate), (expected.Stable, merged.Stable) })
        {
            Assert.Equal((e.MirrorRuns, e.MirrorErrors), (m.MirrorRuns, m.MirrorErrors));
            Assert.Equal(
                (e.Requests, e.Errors, e.Uncertain, e.LatencySamples, e.LatencyP95, e.LatencyP99, e.ServiceTimeSamples, e.ServiceTimeP50, e.ServiceTimeP95),
                (m.Requests, m.Errors, m.Uncertain, m.LatencySamples, m.LatencyP95, m.LatencyP99, m.ServiceTimeSamples, m.ServiceTimeP50, m.ServiceTimeP95));
            Assert.Equal((e.SingleServiceHistogram!.Count, e.SingleServiceHistogram.Quantile(0.5)), (m.SingleServiceHistogram!.Count, m.SingleServiceHistogram.Quantile(0.5)));
            Assert.InRange(e.SingleServiceHistogram.Count, 1, e.ServiceTimeSamples - 1); // single-window runs are a subset
            Assert.Equal(e.MeanBatchSize!.Value, m.MeanBatchSize!.Value, 9);
            Assert.InRange(e.MeanBatchSize.Value, 4, 5); // sizes 1..8 drawn uniformly: mean 4.5
            Assert.Equal(e.ClassCounts, m.ClassCounts);
            Assert.Equal(e.MeanConfidence, m.MeanConfidence, 9);
        }

        Assert.Equal((expected.Paired.Pairs, expected.Paired.Agreements, expected.Paired.CandidateUncertain, expected.Paired.StableUncertain), (merged.Paired.Pairs, merged.Paired.Agreements, merged.Paired.CandidateUncertain, merged.Paired.StableUncertain));
        Assert.Equal(expected.Paired.CandidateClassCounts, merged.Paired.CandidateClassCounts);
        Assert.Equal(expected.Paired.StableClassCounts, merged.Paired.StableClassCounts);
        Assert.Equal(expected.Paired.MeanConfidenceDrop, merged.Paired.MeanConfidenceDrop, 9);
        Assert.Equal(expected.Paired.StableMeanConfidence, merged.Paired.StableMeanConfidence, 9);
        Assert.Equal((expected.Paired.StableSurePairs, expected.Paired.StableSureAgreements), (merged.Paired.StableSurePairs, merged.Paired.StableSureAgreements));
        Assert.Equal(expected.Paired.BothUncertain, merged.Paired.BothUncertain);
        Assert.InRange(expected.Paired.BothUncertain, 1, Math.Min(expected.Paired.CandidateUncertain, expected.Paired.StableUncertain) - 1);
        Assert.InRange(expected.Paired.StableSurePairs, 1, expected.Paired.Pairs - 1);
        Assert.True(expected.Candidate.Requests > 500 && expected.Paired.Pairs > 500);
        Assert.Equal(0, expected.Candidate.MirrorRuns);
        Assert.InRange(expected.Stable.MirrorErrors, 1, expected.Stable.MirrorRuns - 1);
    }

    [Fact]
    public void Merge_ReplicaWithoutTheChampionsPairFigures_MarksThemUnknown_NotZero()
    {
        var leader = new RolloutObservations(DateTimeOffset.UnixEpoch);
        leader.RecordPair(new PairedObservation(1, 0.6f, false, 1, 0.9f, false));

        // A replica of the previous release ships pairs without the champion's confidence sum and sure pairs.
        var old = new ObservationDelta { Pairs = new ObservationDelta.Paired(3, 2, [0, 3], [0, 3], 0.3, 0.05, 0, 1) };
        leader.Merge(JsonSerializer.Deserialize<ObservationDelta>(JsonSerializer.Serialize(old, RolloutStateStore.Json), RolloutStateStore.Json)!);
        var paired = leader.TakeSnapshot("1.1.0", "1.0.0", DateTimeOffset.UnixEpoch.AddMinutes(1), Labels, reset: false).Paired;
        Assert.Equal(4, paired.Pairs);
        Assert.True(double.IsNaN(paired.StableMeanConfidence));
        Assert.Equal(-1, paired.StableSurePairs);
        Assert.Equal(-1, paired.BothUncertain);

        // The agreement gate then judges all pairs, as before.
        var result = new AgreementGate(0.75, 1, Statistics.NormalQuantile(0.95)).Evaluate(leader.TakeSnapshot("1.1.0", "1.0.0", DateTimeOffset.UnixEpoch.AddMinutes(2), Labels));
        Assert.Equal(0, result.Evidence["stable_sure_basis"]);
        Assert.Equal(0.75, result.Evidence["judged_agreement_rate"], 6); // 3 of 4 pairs; on the 1 sure pair it would be 100 %
    }

    [Fact]
    public void Merge_ReplicaWithoutBatchSizes_MarksTheMeanBatchSizeUnknown()
    {
        var leader = new RolloutObservations(DateTimeOffset.UnixEpoch);
        leader.RecordLatency("1.1.0", TimeSpan.FromMilliseconds(2), TimeSpan.FromMilliseconds(0.2), batchSize: 4);
        Assert.Equal(4, leader.TakeSnapshot("1.1.0", "1.0.0", DateTimeOffset.UnixEpoch, Labels, reset: false).Candidate.MeanBatchSize);

        // A replica of the previous release ships service times without the batch sizes: the mean is unknown, not 4.
        var old = new ObservationDelta();
        old.Versions["1.1.0"] = new ObservationDelta.Version(0, 0, 0, 0, 0, [], [], new Dictionary<int, long> { [10] = 3 });
        leader.Merge(JsonSerializer.Deserialize<ObservationDelta>(JsonSerializer.Serialize(old, RolloutStateStore.Json), RolloutStateStore.Json)!);
        Assert.Null(leader.TakeSnapshot("1.1.0", "1.0.0", DateTimeOffset.UnixEpoch.AddMinutes(1), Labels).Candidate.MeanBatchSize);

        // Known again from the next interval on.
        leader.RecordLatency("1.1.0", TimeSpan.FromMilliseconds(2), TimeSpan.FromMilliseconds(0.2), batchSize: 2);
        Assert.Equal(2, leader.TakeSnapshot("1.1.0", "1.0.0", DateTimeOffset.UnixEpoch.AddMinutes(2), Labels).Candidate.MeanBatchSize);
    }

    [Fact]
    public void Merge_LatencyBucketOutsideTheHistogram_Refused()
    {
        var delta = new ObservationDelta();
        delta.Versions["1.0.0"] = new ObservationDelta.Version(1, 0, 0.9, 0.81, 0, [1], new Dictionary<int, long> { [100_000] = 1 }, []);
        var error = Assert.Throws<InvalidDataException>(() => new RolloutObservations().Merge(delta));
        Assert.Contains("outside the histogram", error.Message, StringComparison.Ordinal);
    }
}
