using System.Text;
using Har.Deployment.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Har.Deployment.Tests.Feedback;

/// <summary>
/// The labelled windows of a single-process deployment outlive the process: before, a restart (or a crash) threw away the
/// accuracy gate's evidence, and labels for windows predicted before it joined nothing.
/// </summary>
public sealed class FeedbackJournalTests : IDisposable
{
    private const int Length = 128;
    private static readonly string[] Activities = ["WALKING", "SITTING", "STANDING"];
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 15, 10, 30, 0, TimeSpan.Zero));
    private readonly string _dir = Directory.CreateTempSubdirectory("har-feedback-journal-").FullName;

    private string JournalPath => Path.Combine(_dir, FeedbackJournal.FileName);

    [Fact]
    public void Restart_RestoresTheLabelledWindows_ByName_AndKeepsAppending()
    {
        var first = NewStore(v => v == "1.1.0" ? ["STANDING", "WALKING", "SITTING"] : null); // the candidate lists its labels in another order
        Assert.Equal((0, 0), first.AttachJournal(JournalPath));
        FeedbackStoreTests.Record(first, "d1", "1.0.0", PredictionRole.Served, [0, 64, 128, 192], [0, 0, 0, 1]);
        first.Record("d1", "1.1.0", [0, 64, 128, 192], [TestPrediction.Of(1, "WALKING", "1.1.0"), TestPrediction.Of(2, "SITTING", "1.1.0"), TestPrediction.Of(1, "WALKING", "1.1.0"), TestPrediction.Of(1, "WALKING", "1.1.0")]);
        Assert.Equal(3, first.Report("d1", "WALKING", 0, 256)); // starts 0, 64, 128
        var before = first.Count("1.1.0", "1.0.0");

        // Not closed: what a killed process leaves. Every labelled window reached the file when it was labelled.
        var second = NewStore(v => v == "1.1.0" ? ["STANDING", "WALKING", "SITTING"] : null);
        Assert.Equal((3, 0), second.AttachJournal(JournalPath));
        Assert.Equal(before, second.Count("1.1.0", "1.0.0"));
        Assert.Equal((3L, 3L), second.Accuracy("1.0.0"));
        Assert.Equal((3L, 2L), second.Accuracy("1.1.0"));

        // Windows labelled after the restart are appended behind the restored ones, each once.
        FeedbackStoreTests.Record(second, "d2", "1.0.0", PredictionRole.Served, [0], [1]);
        Assert.Equal(1, second.Report("d2", "SITTING", 0, Length));
        first.CloseJournal();
        second.CloseJournal();
        var third = NewStore(_ => null);
        Assert.Equal((4, 0), third.AttachJournal(JournalPath));
        Assert.Equal((4L, 4L), third.Accuracy("1.0.0"));
        third.CloseJournal();
    }

    [Fact]
    public void ATornLastLine_IsSkipped_AndTheNextAppendStartsOnAWholeLine()
    {
        var store = NewStore(_ => null);
        store.AttachJournal(JournalPath);
        FeedbackStoreTests.Record(store, "d1", "1.0.0", PredictionRole.Served, [0, 64], [0, 1]);
        Assert.Equal(2, store.Report("d1", "WALKING", 0, 192));
        store.CloseJournal();
        File.AppendAllText(JournalPath, "{\"Truth\":\"WALK", Encoding.UTF8); // a crash in the middle of a write

        var restarted = NewStore(_ => null);
        Assert.Equal((2, 1), restarted.AttachJournal(JournalPath));
        Assert.Null(restarted.DamagedJournalCopy); // a torn last line is what a crash leaves: not damage
        FeedbackStoreTests.Record(restarted, "d2", "1.0.0", PredictionRole.Served, [0], [2]);
        Assert.Equal(1, restarted.Report("d2", "STANDING", 0, Length));
        restarted.CloseJournal();

        var again = NewStore(_ => null);
        Assert.Equal((3, 0), again.AttachJournal(JournalPath));
        Assert.Equal((3L, 2L), again.Accuracy("1.0.0"));
        again.CloseJournal();
    }

    [Fact]
    public void ALineDamagedBeforeTheLast_IsWarnedAndTheFileKeptAsItWas()
    {
        // Found from outside: a journal damaged mid-file (not torn by a crash) was rewritten with what could be read,
        // noted at Information only; those labels cannot be collected again.
        var store = NewStore(_ => null);
        store.AttachJournal(JournalPath);
        FeedbackStoreTests.Record(store, "d1", "1.0.0", PredictionRole.Served, [0, 64, 128], [0, 1, 2]);
        Assert.Equal(3, store.Report("d1", "WALKING", 0, 256));
        store.CloseJournal();
        var lines = File.ReadAllLines(JournalPath);
        lines[1] = "{\"Truth\":\"WAL##damaged";
        File.WriteAllLines(JournalPath, lines);
        var original = File.ReadAllBytes(JournalPath);

        var restarted = NewStore(_ => null);
        Assert.Equal((2, 1), restarted.AttachJournal(JournalPath));

        Assert.NotNull(restarted.DamagedJournalCopy);
        Assert.Equal(original, File.ReadAllBytes(restarted.DamagedJournalCopy));
        Assert.Equal(2, File.ReadAllLines(JournalPath).Count(l => l.Length > 0)); // rewritten with the readable windows
        restarted.CloseJournal();
    }

    [Fact]
    public void TheJournal_KeepsTheNewestWindowsTheStoreHolds_RewrittenPastTwiceAsMany()
    {
        var limits = new FeedbackLimits { LabelledWindows = 4 };
        var store = new FeedbackStore(Activities, Length, 50, _ => null, _time, limits: limits);
        store.AttachJournal(JournalPath);
        for (var i = 0; i < 9; i++)
        {
            // Window i is right when i is even (truth WALKING, answer WALKING or SITTING).
            FeedbackStoreTests.Record(store, "d1", "1.0.0", PredictionRole.Served, [i * Length], [i % 2]);
            Assert.Equal(1, store.Report("d1", "WALKING", i * Length, (i + 1) * Length));
        }

        // 9 lines > 2 × 4: rewritten with the newest 4 (windows 5–8: two right).
        Assert.Equal(4, File.ReadAllLines(JournalPath).Length);
        store.CloseJournal();
        var restarted = new FeedbackStore(Activities, Length, 50, _ => null, _time, limits: limits);
        Assert.Equal((4, 0), restarted.AttachJournal(JournalPath));
        Assert.Equal((4L, 2L), restarted.Accuracy("1.0.0"));
        Assert.Equal(store.Accuracy("1.0.0"), restarted.Accuracy("1.0.0"));
        restarted.CloseJournal();
    }

    [Fact]
    public async Task KilledWithSigkill_TheRestartedControllersStoreCountsEveryLabelledWindow()
    {
        // Real processes on the real clock: a child serves a stream, labels its windows and is killed (no flush, no close);
        // each restart restores what the earlier ones labelled.
        await using (var audit = Har.Audit.AuditLog.Open(new Har.Audit.AuditLogOptions { Directory = Path.Combine(_dir, "audit"), EnableMetrics = false }))
        {
            new ModelRegistry(Path.Combine(_dir, "registry"), audit).Register(TestRegistry.ChampionFile);
        }

        var expected = 0L;
        for (var round = 0; round < 3; round++)
        {
            using var child = ProcessHost.Start(["label", _dir, round.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            var log = new StringBuilder();
            var line = await ProcessHost.WaitForLineAsync(child, l => l.StartsWith("LABELLED", StringComparison.Ordinal), log, TestContext.Current.CancellationToken);
            child.Kill(entireProcessTree: true);
            await child.WaitForExitAsync(TestContext.Current.CancellationToken);
            Assert.True(line is not null, $"the child ended without labelling: {await child.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken)}\n{log}");
            var parts = line!.Split(' ');
            var labelledNow = long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(20, labelledNow);
            expected += labelledNow;
            Assert.Equal(expected, long.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture)); // the earlier rounds' windows were restored
        }

        var registry = new ModelRegistry(Path.Combine(_dir, "registry"));
        var serving = TestRegistry.ServingOptions();
        await using var pipeline = ServingPipeline.Open(registry, serving);
        await using (await RolloutController.OpenAsync(registry, pipeline, new RolloutControllerOptions { MetricsRegistry = Prometheus.Metrics.NewCustomRegistry() }))
        {
            Assert.Equal(60L, pipeline.Feedback.Accuracy(registry.CurrentVersion!).Labelled);
            Assert.Equal(Path.Combine(registry.Root, ".rollout", FeedbackJournal.FileName), pipeline.Feedback.JournalPath);
        }

        Assert.Null(pipeline.Feedback.JournalPath); // closed with the controller
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private FeedbackStore NewStore(Func<string, IReadOnlyList<string>?> labelsOf) => new(Activities, Length, 50, labelsOf, _time);
}
