using System.Globalization;
using System.IO.Compression;
using System.Text;
using Har.Inference.Data;
using Har.Testing;

namespace Har.Inference.Tests.Data;

/// <summary><c>har eval</c>'s engine on a small dataset in the common sample format that the test writes itself.</summary>
public sealed class DatasetEvaluatorTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("har-dataset-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void Evaluate_LabelsASubsetAndSupersetOfTheModels_MatchesByNameAndExcludesUnknownActivitiesCounted()
    {
        // Another study: its own file name, no splits.csv, label ids in its own order, "walking" in lower case,
        // two activities the model does not know (JOGGING, CYCLING) and most of the model's twelve missing.
        WriteDataset(
            "study-2026.csv.gz",
            "id,name,kind\n0,UNLABELED,unlabeled\n1,walking,dynamic\n2,JOGGING,dynamic\n3,LAYING,static\n4,CYCLING,dynamic\n",
            (1, 1, [(250, 1), (200, 2), (250, 3)]),
            (2, 7, [(50, 0), (350, 4)]));
        using var model = HarModel.Load(Fixture.Probs, Fixture.Options());

        var result = DatasetEvaluator.Evaluate(model, _folder, "all", samplesFile: null);

        // Windows of 200 every 100: session 1 gives walking ×2, JOGGING ×2 (excluded), LAYING ×2; session 2 CYCLING ×3 (excluded).
        Assert.Equal(4, result.Report.Windows);
        Assert.Equal(2, result.Report.PerClass.Single(c => c.Label == "WALKING").Support);
        Assert.Equal(2, result.Report.PerClass.Single(c => c.Label == "LAYING").Support);
        Assert.Equal([("JOGGING", 2), ("CYCLING", 3)], result.Excluded);
        Assert.Equal(0, result.Report.ExcludedWindows);
        Assert.Equal(2, result.Sessions);
        Assert.Equal("all", result.Split);
        Assert.EndsWith("study-2026.csv.gz", result.SamplesFile, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_SplitWithoutSplitsFile_SaysToUseAllAndSeveralSamplesFilesMustBeNamed()
    {
        WriteDataset("a.csv.gz", "id,name,kind\n0,UNLABELED,unlabeled\n1,WALKING,dynamic\n", (1, 1, [(10, 1)]));

        var split = Assert.Throws<ArgumentException>(() => SensorDataset.Load(_folder, "test"));
        Assert.Contains("has no splits.csv; use the split 'all'", split.Message, StringComparison.Ordinal);
        Assert.Single(SensorDataset.Load(_folder, "all"));

        WriteDataset("b.csv.gz", "id,name,kind\n0,UNLABELED,unlabeled\n1,WALKING,dynamic\n", (1, 1, [(10, 1)]));
        var several = Assert.Throws<FileNotFoundException>(() => SensorDataset.Load(_folder));
        Assert.Contains("several samples files (a.csv.gz, b.csv.gz)", several.Message, StringComparison.Ordinal);
        Assert.Single(SensorDataset.Load(_folder, "all", "b.csv.gz", null, TestContext.Current.CancellationToken));
    }

    [Fact]
    public void Evaluate_LabelIdMissingFromLabelsCsv_NamesSessionAndLabel()
    {
        WriteDataset("s.csv.gz", "id,name,kind\n0,UNLABELED,unlabeled\n1,WALKING,dynamic\n", (3, 9, [(300, 1), (10, 5)]));
        using var model = HarModel.Load(Fixture.Probs, Fixture.Options());

        var ex = Assert.Throws<InvalidDataException>(() => DatasetEvaluator.Evaluate(model, _folder, "all", samplesFile: null));
        Assert.Contains("Session 9 (subject 3) has label 5, which labels.csv does not name", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_CardChannelsInAnotherOrder_ReadsTheDataByTheCardsNames()
    {
        // tiny-probs relabelled: the graph's first three inputs are now named gx gy gz (normalization unchanged, it is
        // per input position). Scored on data D it must see what tiny-probs sees on D with its columns moved: the
        // gyroscope columns in the ax ay az positions and the reverse.
        const string Labels = "id,name,kind\n0,UNLABELED,unlabeled\n1,WALKING,dynamic\n2,SITTING,static\n3,LAYING,static\n";
        (int, int, (int, int)[])[] sessions = [(1, 1, [(400, 1), (300, 2), (500, 3)]), (2, 2, [(600, 3), (300, 1)])];
        var gyroFirst = Path.Combine(_folder, "gyro-first.onnx");
        File.WriteAllBytes(gyroFirst, OnnxModelEditor.WithKey(File.ReadAllBytes(Fixture.Probs), ModelCardKeys.Channels, "[\"gx\",\"gy\",\"gz\",\"ax\",\"ay\",\"az\"]"));
        using var relabelled = HarModel.Load(gyroFirst, Fixture.Options());
        using var original = HarModel.Load(Fixture.Probs, Fixture.Options());

        WriteDataset("d.csv.gz", Labels, sessions);
        var onData = DatasetEvaluator.Evaluate(relabelled, _folder, "all", samplesFile: null);
        var originalOnData = DatasetEvaluator.Evaluate(original, _folder, "all", samplesFile: null);
        File.Delete(Path.Combine(_folder, "d.csv.gz"));
        WriteDataset("moved.csv.gz", Labels, [3, 4, 5, 0, 1, 2], sessions);
        var originalOnMoved = DatasetEvaluator.Evaluate(original, _folder, "all", samplesFile: null);

        Assert.Equal(Confusion(originalOnMoved.Report), Confusion(onData.Report));
        Assert.Equal(originalOnMoved.Report.Accuracy, onData.Report.Accuracy);
        Assert.NotEqual(Confusion(originalOnData.Report), Confusion(onData.Report)); // the order matters on this data
    }

    [Fact]
    public void Evaluate_CardChannelTheFormatLacks_IsRefusedNamingIt()
    {
        WriteDataset("d.csv.gz", "id,name,kind\n0,UNLABELED,unlabeled\n1,WALKING,dynamic\n", (1, 1, [(400, 1)]));
        var magnetometer = Path.Combine(_folder, "mag.onnx");
        File.WriteAllBytes(magnetometer, OnnxModelEditor.WithKey(File.ReadAllBytes(Fixture.Probs), ModelCardKeys.Channels, "[\"ax\",\"ay\",\"az\",\"mx\",\"my\",\"mz\"]"));
        using var model = HarModel.Load(magnetometer, Fixture.Options());

        var ex = Assert.Throws<InvalidDataException>(() => DatasetEvaluator.Evaluate(model, _folder, "all", samplesFile: null));
        Assert.Contains("reads the channel 'mx', which a dataset in the common sample format does not have", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_SampleRateOtherThanTheCards_AndLabelsMatchingNothingOnBothSides_AreWarned()
    {
        // 400 frames over 4 s: 100 Hz, where the card says 50. The data's "walk" and the model's WALKING are one
        // activity under two names.
        WriteDataset("d.csv.gz", "id,name,kind\n0,UNLABELED,unlabeled\n1,walk,dynamic\n2,LAYING,static\n", (1, 1, [(400, 1), (400, 2)]));
        File.WriteAllText(Path.Combine(_folder, "sessions.csv"), "subject,session,n_samples,duration_s,labeled_samples,split\n1,1,800,8.0,800,train\n");
        using var model = HarModel.Load(Fixture.Probs, Fixture.Options());

        var result = DatasetEvaluator.Evaluate(model, _folder, "all", samplesFile: null);

        Assert.Equal(2, result.Warnings.Count);
        Assert.Contains("the data is sampled at 100 Hz (sessions.csv: samples over duration) but tiny-probs@1.0.0's card says 50 Hz", result.Warnings[0], StringComparison.Ordinal);
        Assert.Contains("the data's walk match no label of the model", result.Warnings[1], StringComparison.Ordinal);
        Assert.Contains("WALKING", result.Warnings[1], StringComparison.Ordinal);

        // At the card's rate, and with the names agreeing, nothing is warned.
        WriteDataset("d.csv.gz", "id,name,kind\n0,UNLABELED,unlabeled\n1,WALKING,dynamic\n2,LAYING,static\n", (1, 1, [(400, 1), (400, 2)]));
        File.WriteAllText(Path.Combine(_folder, "sessions.csv"), "subject,session,n_samples,duration_s,labeled_samples,split\n1,1,800,16.0,800,train\n");
        Assert.Empty(DatasetEvaluator.Evaluate(model, _folder, "all", samplesFile: null).Warnings);
    }

    private static int[,] Confusion(EvaluationReport report)
    {
        var n = report.Labels.Count;
        var m = new int[n, n];
        for (var i = 0; i < n; i++)
        {
            for (var j = 0; j < n; j++)
            {
                m[i, j] = report.GetConfusion(i, j);
            }
        }

        return m;
    }

    private void WriteDataset(string file, string labels, params (int Subject, int Session, (int Frames, int Label)[] Runs)[] sessions) =>
        WriteDataset(file, labels, [0, 1, 2, 3, 4, 5], sessions);

    /// <summary>Writes labels.csv and a gzip CSV of sessions, each a run list of (frames, label id), with pseudo-sensor values.</summary>
    /// <param name="file">The samples file's name.</param>
    /// <param name="labels">labels.csv's text.</param>
    /// <param name="columns">For each written column ax … gz, the generated channel it holds (the identity, or a permutation).</param>
    /// <param name="sessions">The sessions.</param>
    private void WriteDataset(string file, string labels, int[] columns, (int Subject, int Session, (int Frames, int Label)[] Runs)[] sessions)
    {
        File.WriteAllText(Path.Combine(_folder, "labels.csv"), labels);
        var csv = new StringBuilder("subject,session,t_index,ax,ay,az,gx,gy,gz,label\n");
        var rng = new Random(5);
        foreach (var (subject, session, runs) in sessions)
        {
            var t = 0;
            foreach (var (frames, label) in runs)
            {
                for (var f = 0; f < frames; f++, t++)
                {
                    csv.Append(CultureInfo.InvariantCulture, $"{subject},{session},{t}");
                    var frame = new double[6];
                    for (var c = 0; c < 6; c++)
                    {
                        frame[c] = (rng.NextDouble() * 2) - 1;
                    }

                    foreach (var c in columns)
                    {
                        csv.Append(CultureInfo.InvariantCulture, $",{frame[c]:0.000000}");
                    }

                    csv.Append(CultureInfo.InvariantCulture, $",{label}\n");
                }
            }
        }

        using var stream = File.Create(Path.Combine(_folder, file));
        using var gzip = new GZipStream(stream, CompressionLevel.Fastest);
        gzip.Write(Encoding.UTF8.GetBytes(csv.ToString()));
    }
}
