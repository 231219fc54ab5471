using System.Globalization;
using System.Text;
using System.Text.Json;
using Har.Cli.Demo;

namespace Har.Cli.Tests.Demo;

/// <summary>
/// The synthetic streams `har demo` plays on a fresh clone must look like the UCI HAPT recordings to the networks
/// trained on them: otherwise the demo's healthy canary is judged on data neither model can read (the rollout's
/// class-mix and agreement gates then compare two models' guesses). Scored with `har eval` on the streams written in
/// the shared data layout, the protocol of the model cards.
/// </summary>
[Collection(ConsoleTests.Name)]
public sealed class SyntheticRealismTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("har-cli-tests-synthetic-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string> BundledModels() => [Path.GetFileName(TestPaths.ChampionModel), Path.GetFileName(TestPaths.CandidateModel)];

    [Theory]
    [MemberData(nameof(BundledModels))]
    public async Task BundledModel_ReadsTheDemoSyntheticStreams_EveryActivity(string file)
    {
        var model = Path.Combine(Path.GetDirectoryName(TestPaths.ChampionModel)!, file);
        if (!File.Exists(model))
        {
            Assert.Skip($"Skipped: the bundled model {file} is not built beside the tests.");
        }

        // The demo's default streams (seed 1, four people) and four more people.
        WriteDataset(SyntheticImu.Generate(1, 8, 240, "synthetic-test", firstSubject: 101));

        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("eval", "--data", _dir, "--model", model, "--tolerance", "100", "--json");

        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        Assert.True(root.GetProperty("n_windows").GetInt32() > 800, stdout);
        Assert.True(root.GetProperty("accuracy").GetDouble() >= 0.95, $"accuracy {root.GetProperty("accuracy").GetDouble():0.000}");
        foreach (var c in root.GetProperty("per_class").EnumerateArray().Where(c => c.GetProperty("support").GetInt32() > 0))
        {
            // Each of the six generated activities is mostly recognised (the sinusoidal gait of earlier versions was
            // read as another activity in almost every window).
            Assert.True(c.GetProperty("recall").GetDouble() >= 0.85, $"{c.GetProperty("name").GetString()}: recall {c.GetProperty("recall").GetDouble():0.000}");
        }
    }

    /// <summary>Writes the sessions in the shared data layout (labels.csv ids: 0 unlabeled, then the activities).</summary>
    private void WriteDataset(List<SyntheticSession> sessions)
    {
        var labels = new StringBuilder("id,name,kind\n0,UNLABELED,unlabeled\n");
        for (var i = 0; i < SyntheticImu.Activities.Length; i++)
        {
            labels.Append(CultureInfo.InvariantCulture, $"{i + 1},{SyntheticImu.Activities[i]},{(i < 3 ? "dynamic" : "static")}\n");
        }

        File.WriteAllText(Path.Combine(_dir, "labels.csv"), labels.ToString());
        var csv = new StringBuilder("subject,session,t_index,ax,ay,az,gx,gy,gz,label\n");
        foreach (var s in sessions)
        {
            for (var t = 0; t < s.Length; t++)
            {
                csv.Append(CultureInfo.InvariantCulture, $"{s.Subject},1,{t}");
                for (var c = 0; c < 6; c++)
                {
                    csv.Append(CultureInfo.InvariantCulture, $",{s.Samples[(t * 6) + c]:R}");
                }

                csv.Append(CultureInfo.InvariantCulture, $",{(s.Labels[t] is { } l ? Array.IndexOf(SyntheticImu.Activities, l) + 1 : 0)}\n");
            }
        }

        File.WriteAllText(Path.Combine(_dir, "synthetic.csv"), csv.ToString());
    }
}
