using Har.Inference;
using Microsoft.Extensions.Time.Testing;

namespace Har.Deployment.Tests.Feedback;

public sealed class FeedbackStoreTests
{
    private const int Length = 128;
    private const int Stride = 64;
    private static readonly string[] Activities = ["WALKING", "SITTING", "STANDING"];

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 15, 10, 30, 0, TimeSpan.Zero));

    [Fact]
    public void FrameLabel_ArrivingMinutesLater_JoinsEveryVersionThatSawTheWindows()
    {
        var store = NewStore();

        // Stream d1: ten windows (starts 0, 64, …, 576) served by the champion and mirrored to the candidate;
        // the champion says WALKING everywhere, the candidate SITTING on the first two.
        Record(store, "d1", "1.0.0", PredictionRole.Served, [0, 64, 128, 192, 256, 320, 384, 448, 512, 576], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        Record(store, "d1", "1.1.0", PredictionRole.Mirror, [0, 64, 128, 192, 256, 320, 384, 448, 512, 576], [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        Record(store, "d2", "1.1.0", PredictionRole.Served, [0, 64], [0, 0]);
        _time.Advance(TimeSpan.FromMinutes(3));

        // Frames [0, 448) hold windows whose frames all lie inside: starts 0 … 320 (320 + 128 = 448), six windows.
        Assert.Equal(6, store.Report("d1", "walking", 0, 448));

        var n = store.Count("1.1.0", "1.0.0");
        Assert.Equal(6, n.Pairs);
        Assert.Equal((4, 2, 0, 0), (n.BothRight, n.StableOnlyRight, n.CandidateOnlyRight, n.BothWrong));
        Assert.Equal((6, 4), (n.CandidateLabelled, n.CandidateCorrect));
        Assert.Equal((6, 6), (n.StableLabelled, n.StableCorrect));
        Assert.Equal((6L, 6L), store.Accuracy("1.0.0"));
        Assert.Equal((6L, 4L), store.Accuracy("1.1.0"));

        // A window is labelled once: the same range again labels nothing; the next range labels the rest.
        Assert.Equal(0, store.Report("d1", "WALKING", 0, 448));
        Assert.Equal(4, store.Report("d1", "SITTING", 384, 10_000));
        Assert.Equal((10L, 6L), store.Accuracy("1.0.0"));
    }

    [Fact]
    public void Fleet_WindowsLabelledOnAFollower_AreShippedByName_AndCountOnTheLeader()
    {
        // The follower's activities in another order than the leader's: what is shipped is named, not indexed.
        var follower = new FeedbackStore(["STANDING", "WALKING", "SITTING"], Length, 50, _ => null, _time);
        var leader = NewStore();
        follower.KeepForShipping(true);
        follower.Record("d1", "1.0.0", [0, 64, 128], [.. new[] { 1, 1, 1 }.Select(c => TestPrediction.Of(c, follower.Activities[c], "1.0.0"))]);
        follower.Record("d1", "1.1.0", [0, 64, 128], [.. new[] { 2, 1, 1 }.Select(c => TestPrediction.Of(c, follower.Activities[c], "1.1.0"))]);
        Assert.Equal(3, follower.Report("d1", "WALKING", 0, 256));

        var shipped = follower.DrainShipped();
        Assert.Equal(3, shipped.Count);
        Assert.All(shipped, l => Assert.Equal("WALKING", l.Truth));
        Assert.Equal([new ShippedPrediction("1.0.0", "WALKING"), new ShippedPrediction("1.1.0", "SITTING")], shipped[0].Predictions);
        Assert.Empty(follower.DrainShipped());

        // The leader, which served none of these windows, counts them as if it had.
        Assert.Equal(0, leader.Count("1.1.0", "1.0.0").Pairs);
        Assert.Equal(3, leader.Import(shipped));
        var n = leader.Count("1.1.0", "1.0.0");
        Assert.Equal((3L, 2L, 1L, 0L, 0L), (n.Pairs, n.BothRight, n.StableOnlyRight, n.CandidateOnlyRight, n.BothWrong));
        Assert.Equal((3L, 2L), leader.Accuracy("1.1.0"));

        // Imported windows are not shipped again, and a store that does not ship keeps nothing for it.
        leader.KeepForShipping(true);
        leader.Import(shipped);
        Assert.Empty(leader.DrainShipped());
        follower.KeepForShipping(false);
        follower.Record("d2", "1.0.0", [0], [TestPrediction.Of(1, "WALKING", "1.0.0")]);
        Assert.Equal(1, follower.Report("d2", "WALKING", 0, 128));
        Assert.Empty(follower.DrainShipped());
    }

    [Fact]
    public void Fleet_LabelsReceivedWhereTheStreamIsNot_AreForwardedAndJoinWhereItIs()
    {
        var received = NewStore();
        var holder = NewStore();
        received.KeepForForwarding(true);
        holder.Record("d1", "1.0.0", [0, 64, 128], [.. new[] { 0, 0, 1 }.Select(c => TestPrediction.Of(c, Activities[c], "1.0.0"))]);

        // The replica that received them holds no window of d1: it labels nothing, and keeps both labels for the others.
        Assert.Equal(0, received.Report("d1", "walking", 0, 256));
        Assert.Equal(0, received.Report("d1", "SITTING", _time.GetUtcNow().AddMinutes(-1), _time.GetUtcNow().AddMinutes(1)));
        var forwarded = received.DrainForwarded();
        Assert.Equal([new ForwardedLabel("d1", "WALKING", 0, 256, null, null), new ForwardedLabel("d1", "SITTING", null, null, _time.GetUtcNow().AddMinutes(-1), _time.GetUtcNow().AddMinutes(1))], forwarded);
        Assert.Empty(received.DrainForwarded());

        // Where d1's windows are, the frame label joins its three windows; the time label then finds them labelled.
        Assert.Equal(3, holder.ApplyForwarded(forwarded));
        Assert.Equal((3L, 2L), holder.Accuracy("1.0.0"));

        // A write that failed puts them back in front; a store that does not forward keeps nothing.
        received.Report("d2", "STANDING", 0, 128);
        received.Requeue(forwarded);
        Assert.Equal(["d1", "d1", "d2"], received.DrainForwarded().Select(l => l.StreamId));
        received.KeepForForwarding(false);
        received.Report("d3", "STANDING", 0, 128);
        Assert.Empty(received.DrainForwarded());
    }

    [Fact]
    public void TimeLabel_CoversWindowsWhoseSpanLiesInTheRange_AtTheCardsSampleRate()
    {
        var store = NewStore();
        var t0 = _time.GetUtcNow();

        // One window per 1.28 s (stride 64 at 50 Hz); each window spans 2.56 s (128 frames) ending when it was predicted.
        for (var w = 0; w < 10; w++)
        {
            _time.Advance(TimeSpan.FromSeconds(1.28));
            Record(store, "d1", "1.0.0", PredictionRole.Served, [w * Stride], [2]);
        }

        // Arrivals are t0 + 1.28 (w + 1) s; a window is inside [t0 + 2 s, t0 + 8 s] when arrival − 2.56 s ≥ 2 s and
        // arrival ≤ 8 s: arrivals 5.12, 6.40, 7.68 s (w = 3, 4, 5).
        Assert.Equal(3, store.Report("d1", "STANDING", t0.AddSeconds(2), t0.AddSeconds(8)));
        Assert.Equal((3L, 3L), store.Accuracy("1.0.0"));
    }

    [Fact]
    public void VersionsAreComparedByActivityName_ThroughEachVersionsCard()
    {
        // The candidate's card lists the same activities in another order: its class 0 is STANDING.
        var store = new FeedbackStore(Activities, Length, 50, v => v == "2.0.0" ? ["STANDING", "SITTING", "WALKING"] : null, _time);
        Record(store, "d1", "1.0.0", PredictionRole.Served, [0], [0]);
        Record(store, "d1", "2.0.0", PredictionRole.Mirror, [0], [2]);
        Assert.Equal(1, store.Report("d1", "WALKING", 0, Length));
        Assert.Equal((1L, 1L), store.Accuracy("2.0.0"));
        Assert.Equal((1L, 1L), store.Accuracy("1.0.0"));
    }

    [Fact]
    public void AnActivityOnlyTheCandidateKnows_MayBeLabelled_OnceTheCandidateHasPredicted()
    {
        // The candidate added RUNNING (its class 3). Before it predicts, RUNNING is not an activity of the store; once it
        // has, a window labelled RUNNING counts the candidate right and the champion (which said WALKING) wrong.
        var store = new FeedbackStore(Activities, Length, 50, v => v == "2.0.0" ? ["WALKING", "SITTING", "STANDING", "RUNNING"] : null, _time);
        Assert.Contains("Unknown activity 'RUNNING'", Assert.Throws<ArgumentException>(() => store.Report("d1", "RUNNING", 0, Length)).Message, StringComparison.Ordinal);
        Record(store, "d1", "1.0.0", PredictionRole.Served, [0, 64], [0, 0]);
        store.Record("d1", "2.0.0", [0, 64], [TestPrediction.Of(3, "RUNNING", "2.0.0"), TestPrediction.Of(0, "WALKING", "2.0.0")]);

        Assert.Equal(["WALKING", "SITTING", "STANDING", "RUNNING"], store.Activities);
        Assert.Equal(1, store.Report("d1", "running", 0, Length));
        Assert.Equal(1, store.Report("d1", "WALKING", 64, 64 + Length));
        var n = store.Count("2.0.0", "1.0.0");
        Assert.Equal((2L, 1L, 0L, 1L, 0L), (n.Pairs, n.BothRight, n.StableOnlyRight, n.CandidateOnlyRight, n.BothWrong));

        // A leader that has not seen the candidate yet learns RUNNING from the shipped windows' versions.
        var leader = new FeedbackStore(Activities, Length, 50, v => v == "2.0.0" ? ["WALKING", "SITTING", "STANDING", "RUNNING"] : null, _time);
        Assert.Equal(1, leader.Import([new ShippedLabel("RUNNING", [new ShippedPrediction("1.0.0", "WALKING"), new ShippedPrediction("2.0.0", "RUNNING")])]));
        var m = leader.Count("2.0.0", "1.0.0");
        Assert.Equal((1L, 1L), (m.Pairs, m.CandidateOnlyRight));
    }

    [Fact]
    public void BadLabels_AreRefusedWithWhatWasExpected()
    {
        var store = NewStore();
        var unknown = Assert.Throws<ArgumentException>(() => store.Report("d1", "JUMPING", 0, 10));
        Assert.Contains("Unknown activity 'JUMPING'", unknown.Message, StringComparison.Ordinal);
        Assert.Contains("WALKING, SITTING, STANDING", unknown.Message, StringComparison.Ordinal);
        Assert.Contains("expected 0 ≤ startFrame < endFrame", Assert.Throws<ArgumentException>(() => store.Report("d1", "WALKING", 10, 10)).Message, StringComparison.Ordinal);
        Assert.Contains("expected 0 ≤ startFrame < endFrame", Assert.Throws<ArgumentException>(() => store.Report("d1", "WALKING", 20, 10)).Message, StringComparison.Ordinal);
        var t = _time.GetUtcNow();
        Assert.Contains("expected from < to", Assert.Throws<ArgumentException>(() => store.Report("d1", "WALKING", t, t.AddSeconds(-1))).Message, StringComparison.Ordinal);
        Assert.Equal(0, store.Report("never-seen", "WALKING", 0, 1000));
    }

    [Fact]
    public void Memory_IsBounded_OldWindowsAndLeastRecentlyUsedStreamsAreDropped()
    {
        var store = new FeedbackStore(Activities, Length, 50, _ => null, _time, limits: new FeedbackLimits { Streams = 2, WindowsPerStream = 100, LabelledWindows = 4 });
        var starts = Enumerable.Range(0, 250).Select(i => (long)i * Stride).ToArray();
        Record(store, "d1", "1.0.0", PredictionRole.Served, starts, new int[starts.Length]);

        // Only the last 100 windows (starts 150·64 …) are held.
        Assert.Equal(0, store.Report("d1", "WALKING", 0, 149 * Stride + Length));
        Assert.Equal(4, store.Report("d1", "WALKING", 150 * Stride, (153 * Stride) + Length));

        _time.Advance(TimeSpan.FromSeconds(31));
        Record(store, "d2", "1.0.0", PredictionRole.Served, [0], [0]);
        _time.Advance(TimeSpan.FromSeconds(31));
        Record(store, "d3", "1.0.0", PredictionRole.Served, [0], [0]); // evicts d1, the least recently used (idle 62 s, past the minute)
        Assert.Equal(2, store.StreamCount);
        Assert.Equal(0, store.Report("d1", "WALKING", 160 * Stride, (161 * Stride) + Length));

        // The labelled windows held are bounded too: 4 + 2 labelled, the oldest 2 fall out of the accuracy.
        Assert.Equal(1, store.Report("d2", "SITTING", 0, Length));
        Assert.Equal(1, store.Report("d3", "SITTING", 0, Length));
        Assert.Equal((4L, 2L), store.Accuracy("1.0.0"));
    }

    [Fact]
    public void NewStreamIds_WhileEveryHeldStreamIsStreaming_AreNotHeld_TheStreamingDevicesLabelsStillJoin()
    {
        // One client's new stream ids (4,200 predictions, each with a new X-Stream-Id) pushed every device's windows out of
        // the store, so the labels that came later joined nothing. The held streams that keep predicting now stay.
        var registry = Prometheus.Metrics.NewCustomRegistry();
        var store = new FeedbackStore(Activities, Length, 50, _ => null, _time, new FeedbackMetrics(registry), new FeedbackLimits { Streams = 3 });
        string[] devices = ["d1", "d2", "d3"];
        for (var w = 0; w < 5; w++)
        {
            foreach (var d in devices)
            {
                Record(store, d, "1.0.0", PredictionRole.Served, [w * Stride], [0]);
            }

            for (var i = 0; i < 20; i++)
            {
                Record(store, $"flood-{w}-{i}", "1.0.0", PredictionRole.Served, [0], [0]);
            }

            _time.Advance(TimeSpan.FromSeconds(20));
        }

        Assert.Equal(3, store.StreamCount);
        Assert.All(devices, d => Assert.Equal(5, store.Report(d, "STANDING", 0, (4 * Stride) + Length)));
        Assert.Equal(0, store.Report("flood-4-0", "STANDING", 0, Length));
        Assert.Contains("har_feedback_windows_not_held_total 100", Export(registry), StringComparison.Ordinal);

        // A device silent for the minimum idle time gives its place to a new stream.
        _time.Advance(TimeSpan.FromSeconds(61));
        Record(store, "d2", "1.0.0", PredictionRole.Served, [5 * Stride], [0]);
        Record(store, "d3", "1.0.0", PredictionRole.Served, [5 * Stride], [0]);
        Record(store, "d4", "1.0.0", PredictionRole.Served, [0], [0]); // d1, idle 81 s, makes room
        Assert.Equal(1, store.Report("d4", "STANDING", 0, Length));
        Assert.Equal(3, store.StreamCount);
    }

    private static string Export(Prometheus.CollectorRegistry registry)
    {
        using var stream = new MemoryStream();
        registry.CollectAndExportAsTextAsync(stream, TestContext.Current.CancellationToken).GetAwaiter().GetResult();
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    [Fact]
    public void Recording_AKnownStreamAndVersion_AllocatesNothing()
    {
        var store = NewStore();
        var starts = new long[] { 0, 64, 128, 192 };
        var predictions = Predictions("1.0.0", [0, 1, 2, 0]);
        for (var i = 0; i < 600; i++)
        {
            Record(store, "d1", "1.0.0", starts, predictions); // the ring grows to its capacity (1,024 windows) first
        }

        var allocated = Har.Testing.Allocations.LeastPerRound(() =>
        {
            for (var i = 0; i < 1_000; i++)
            {
                Record(store, "d1", "1.0.0", starts, predictions);
            }
        });

        Assert.Equal(0, allocated);
    }

    internal static void Record(FeedbackStore store, string stream, string version, PredictionRole role, long[] starts, int[] classes)
    {
        // The role does not change what is recorded: every version that predicted a window gets its label.
        _ = role;
        store.Record(stream, version, starts, Predictions(version, classes));
    }

    private static void Record(FeedbackStore store, string stream, string version, long[] starts, Prediction[] predictions) =>
        store.Record(stream, version, starts, predictions);

    private static Prediction[] Predictions(string version, int[] classes) =>
        [.. classes.Select(c => TestPrediction.Of(c, Activities[c], version))];

    private FeedbackStore NewStore() => new(Activities, Length, 50, _ => null, _time);
}
