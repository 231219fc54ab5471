using FsCheck;
using FsCheck.Fluent;

namespace Har.Deployment.Tests.Routing;

public sealed class TrafficRouterTests
{
    private static readonly ulong Salt = TrafficPlan.SaltFor("rollout-test");

    [Fact]
    public void Route_KeyOnCandidateAtLowWeight_StaysOnCandidateAsWeightGrows_Property()
    {
        Prop.ForAll(
            ArbMap.Default.ArbFor<NonEmptyString>(),
            Gen.Choose(0, TrafficPlan.BucketCount).ToArbitrary(),
            Gen.Choose(0, TrafficPlan.BucketCount).ToArbitrary(),
            (key, a, b) =>
            {
                var (low, high) = a <= b ? (a, b) : (b, a);
                var atLow = TrafficRouter.Route(new TrafficPlan("1.0.0", "1.1.0", low, Salt), key.Get).IsCandidate;
                var atHigh = TrafficRouter.Route(new TrafficPlan("1.0.0", "1.1.0", high, Salt), key.Get).IsCandidate;
                return !atLow || atHigh;
            }).QuickCheckThrowOnFailure();
    }

    [Theory]
    [InlineData(100)]
    [InlineData(1_000)]
    [InlineData(2_500)]
    [InlineData(5_000)]
    [InlineData(9_000)]
    public void Route_100kRandomKeys_CandidateShareWithinOnePercentOfWeight(int buckets)
    {
        var rng = new Random(buckets);
        var plan = new TrafficPlan("1.0.0", "1.1.0", buckets, Salt);
        var onCandidate = 0;
        const int Keys = 100_000;
        for (var i = 0; i < Keys; i++)
        {
            var key = $"device-{rng.NextInt64():x16}";
            if (TrafficRouter.Route(plan, key).IsCandidate)
            {
                onCandidate++;
            }
        }

        var share = (double)onCandidate / Keys;
        Assert.InRange(share, (buckets / 10_000.0) - 0.01, (buckets / 10_000.0) + 0.01);
    }

    [Fact]
    public void Route_SequentialKeys_BucketsAreUniform()
    {
        // Sequential ids (device-0 … device-99999) are the adversarial case for a weak hash.
        var counts = new int[10];
        for (var i = 0; i < 100_000; i++)
        {
            var bucket = TrafficRouter.Route(new TrafficPlan("a", "b", 5_000, Salt), $"device-{i}").Bucket;
            counts[bucket / 1_000]++;
        }

        foreach (var c in counts)
        {
            Assert.InRange(c, 9_000, 11_000);
        }
    }

    [Fact]
    public void Route_SameKeyAndSalt_SameDecisionAcrossPlanInstances()
    {
        var a = new TrafficPlan("1.0.0", "1.1.0", 3_000, Salt);
        var b = new TrafficPlan("1.0.0", "1.1.0", 3_000, Salt, revision: 7);
        for (var i = 0; i < 1_000; i++)
        {
            var key = $"stream-{i}";
            Assert.Equal(TrafficRouter.Route(a, key).Bucket, TrafficRouter.Route(b, key).Bucket);
        }
    }

    [Fact]
    public void Route_DifferentSalts_ShuffleDevicesIndependently()
    {
        var a = new TrafficPlan("1.0.0", "1.1.0", 5_000, TrafficPlan.SaltFor("rollout-a"));
        var b = new TrafficPlan("1.0.0", "1.1.0", 5_000, TrafficPlan.SaltFor("rollout-b"));
        var same = 0;
        for (var i = 0; i < 10_000; i++)
        {
            var key = $"device-{i}";
            if (TrafficRouter.Route(a, key).IsCandidate == TrafficRouter.Route(b, key).IsCandidate)
            {
                same++;
            }
        }

        // Independent 50 % assignments agree about half of the time.
        Assert.InRange(same, 4_700, 5_300);
    }

    [Fact]
    public void Route_ShadowAndMirror_ShadowNeverServesAndMirrorPairsCandidateWithStable()
    {
        var plan = new TrafficPlan("1.0.0", "1.1.0", 2_000, Salt, shadow: "1.2.0", shadowBuckets: 3_000, mirrorCandidateToStable: true);
        var shadowed = 0;
        for (var i = 0; i < 20_000; i++)
        {
            var d = TrafficRouter.Route(plan, $"d{i}");
            Assert.NotEqual("1.2.0", d.Version);
            if (d.IsCandidate)
            {
                Assert.Equal("1.1.0", d.Version);
                Assert.Equal("1.0.0", d.ShadowVersion);
            }
            else if (d.ShadowVersion is not null)
            {
                Assert.Equal("1.2.0", d.ShadowVersion);
                shadowed++;
            }
        }

        Assert.InRange(shadowed / 20_000.0, 0.28, 0.32);
    }

    [Fact]
    public void Route_SingleVersionPlan_NoHashAndNoShadow()
    {
        var d = TrafficRouter.Route(TrafficPlan.Single("1.0.0"), "any");
        Assert.Equal(new RouteDecision("1.0.0", null, false, -1), d);
    }

    [Fact]
    public async Task Apply_ConcurrentReaders_NeverSeeAHalfAppliedPlan()
    {
        // Two plans that differ in every field; a reader holding a plan snapshot must see the fields of
        // exactly one of them, and each decision must be the one that plan makes.
        var planA = new TrafficPlan("1.0.0", "1.1.0", 1_000, Salt, shadow: null, shadowBuckets: 0, mirrorCandidateToStable: false, revision: 1);
        var planB = new TrafficPlan("2.0.0", "2.1.0", 9_000, Salt ^ 0xFFFF, shadow: "2.2.0", shadowBuckets: 500, mirrorCandidateToStable: true, revision: 2);
        var router = new TrafficRouter(planA);
        using var stop = new CancellationTokenSource();
        var writer = Task.Run(() =>
        {
            for (var i = 0; i < 200_000; i++)
            {
                router.Apply((i & 1) == 0 ? planB : planA);
            }
        });
        var violations = 0;
        var readers = Enumerable.Range(0, 2).Select(r => Task.Run(() =>
        {
            var n = 0;
            while (!writer.IsCompleted)
            {
                var plan = router.Plan;
                var consistent = ReferenceEquals(plan, planA) || ReferenceEquals(plan, planB);
                var d = router.Route($"k{r}-{n++}");
                var belongsToA = d.Version is "1.0.0" or "1.1.0";
                var belongsToB = d.Version is "2.0.0" or "2.1.0";
                if (!consistent || !(belongsToA ^ belongsToB) || (belongsToA && d.ShadowVersion is not null) || (belongsToB && d.IsCandidate && d.ShadowVersion != "2.0.0"))
                {
                    Interlocked.Increment(ref violations);
                }
            }
        })).ToArray();
        await writer;
        await Task.WhenAll(readers);
        Assert.Equal(0, violations);
    }

    [Fact]
    public void TryApply_StaleExpectedPlan_DoesNotReplace()
    {
        var a = TrafficPlan.Single("1.0.0");
        var b = TrafficPlan.Single("1.1.0");
        var router = new TrafficRouter(a);
        Assert.True(router.TryApply(a, b));
        Assert.False(router.TryApply(a, TrafficPlan.Single("9.9.9")));
        Assert.Same(b, router.Plan);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(10_001)]
    public void Constructor_BucketsOutOfRange_Throws(int buckets) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new TrafficPlan("1.0.0", "1.1.0", buckets));

    [Fact]
    public void Constructor_CandidateEqualsStable_Throws()
    {
        var ex = Assert.Throws<ArgumentException>(() => new TrafficPlan("1.0.0", "1.0.0", 10));
        Assert.Contains("two different versions", ex.Message, StringComparison.Ordinal);
    }
}
