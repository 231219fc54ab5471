using System.Globalization;
using System.IO.Compression;
using System.Text;
using Har.Inference.Data;

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

    /// <summary>Writes labels.csv and a gzip CSV of sessions, each a run list of (frames, label id), with pseudo-sensor values.</summary>
    private void WriteDataset(string file, string labels, params (int Subject, int Session, (int Frames, int Label)[] Runs)[] sessions)
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
                    for (var c = 0; c < 6; c++)
                    {
                        csv.Append(CultureInfo.InvariantCulture, $",{(rng.NextDouble() * 2) - 1:0.000000}");
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
