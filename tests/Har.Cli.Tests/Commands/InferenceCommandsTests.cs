using System.Globalization;
using System.IO.Compression;
using System.Text;
using Har.Cli.Commands;

namespace Har.Cli.Tests.Commands;

[Collection(ConsoleTests.Name)]
public sealed class InferenceCommandsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("har-cli-inference-").FullName;

    /// <summary>The fixture model: 200-frame windows at stride 100, the 12 HAPT activities.</summary>
    private static string Model => DemoFixtures.FixtureModel("tiny-probs-1.0.0.onnx");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData(0.0, "0.000")]
    [InlineData(-1e-12, "0.000")] // a measured accuracy equal to the card's up to rounding ("-+0.000" before)
    [InlineData(1e-12, "0.000")]
    [InlineData(0.25, "+0.250")]
    [InlineData(-1.5, "-1.500")]
    public void SignedPoints_ZeroAfterRoundingHasNoSign(double points, string expected)
    {
        Assert.Equal(expected, InferenceCommands.SignedPoints(points));
    }

    public static TheoryData<string, int, int, string, string> NothingScoredCases => new()
    {
        // labels.csv names, sessions × frames, label of every frame, split, the reason
        { "WALKING", 0, 0, "all", "Nothing was scored: hapt_raw_50hz.csv.gz (all split) holds no session (no data rows)." },
        { "WALKING", 1, 450, "test", "Nothing was scored: hapt_raw_50hz.csv.gz (test split) holds no session of a subject in the test split (splits.csv); try --split all." },
        { "WALKING", 2, 150, "all", "Nothing was scored: none of the 2 session(s) of hapt_raw_50hz.csv.gz (all split) is one window long; tiny-probs@1.0.0 needs 200 frames (4 s at 50 Hz)." },
        { "UNLABELED", 1, 450, "all", "Nothing was scored: all 3 windows of the 1 session(s) of hapt_raw_50hz.csv.gz (all split) were left out: 3 are mostly unlabeled (label 0)." },
        { "JOGGING", 2, 450, "all", "Nothing was scored: all 6 windows of the 2 session(s) of hapt_raw_50hz.csv.gz (all split) were left out: 6 are of activities tiny-probs@1.0.0 does not know (JOGGING 6; labels.csv names are matched with the model's labels WALKING " },
    };

    [Theory]
    [MemberData(nameof(NothingScoredCases))]
    public async Task Eval_NothingScored_ExitCode2SayingWhy(string activity, int sessions, int frames, string split, string reason)
    {
        // Each exited 0 with "verdict: NO WINDOWS": a CI gate on har eval passed a model nobody had measured.
        var data = Dataset(activity, sessions, frames);
        foreach (var json in new[] { false, true })
        {
            string[] args = ["eval", "--data", data, "--model", Model, "--split", split];
            var (code, stdout, stderr) = await ConsoleCapture.RunAsync(json ? [.. args, "--json"] : args);

            Assert.Equal(2, code);
            Assert.Empty(stdout);
            Assert.StartsWith("har: " + reason, stderr, StringComparison.Ordinal);
            Assert.Single(stderr.TrimEnd().Split('\n'));
        }
    }

    [Theory]
    [InlineData("NaN")] // accepted, and every comparison with NaN failed: BELOW CARD whatever the accuracy
    [InlineData("Infinity")] // accepted: any model passed
    [InlineData("1e9")]
    [InlineData("100.5")]
    [InlineData("-1")]
    public async Task Eval_ToleranceOutOfRange_ExitCode2WithTheRange(string tolerance)
    {
        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("eval", "--data", Dataset("WALKING", 1, 450), "--model", Model, "--tolerance", tolerance);

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        var shown = double.Parse(tolerance, CultureInfo.InvariantCulture).ToString("R", CultureInfo.InvariantCulture);
        Assert.StartsWith($"har: --tolerance is {shown}; expected a finite number from 0 to 100: ", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("100")]
    public async Task Eval_ToleranceAtTheBounds_Scored(string tolerance)
    {
        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("eval", "--data", Dataset("WALKING", 1, 450), "--split", "all", "--model", Model, "--tolerance", tolerance);

        Assert.True(code is 0 or 1, stderr);
        Assert.Contains("verdict: ", stdout, StringComparison.Ordinal);
        Assert.Contains("on 3 windows", stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Predict_FewerFramesThanOneWindow_ExitCode2SayingHowManyAWindowNeeds(bool json)
    {
        // It printed nothing ('"items": []' with --json) and exited 0.
        var input = Csv("short.csv", ("", 150));
        string[] args = ["predict", "--model", Model, "--input", input];

        var (code, stdout, stderr) = await ConsoleCapture.RunAsync(json ? [.. args, "--json"] : args);

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.Equal($"har: '{input}' has 150 frames; tiny-probs@1.0.0 needs 200 frames (4 s at 50 Hz) for one window.", stderr.TrimEnd());
    }

    [Fact]
    public async Task Predict_GzipSemicolonsAndDecimalCommas_TheSamePredictionsAsThePlainCsv()
    {
        // A spreadsheet's export, compressed: refused with "has the header 'ax;ay;az;gx;gy;gz'; expected columns ax,ay,…".
        var plain = Csv("plain.csv", ("1", 450), ("2", 300));
        var text = File.ReadAllText(plain).Replace(',', ';').Replace('.', ',');
        var exported = Path.Combine(_dir, "export.csv.gz");
        using (var zip = new GZipStream(File.Create(exported), CompressionLevel.Fastest))
        {
            zip.Write(Encoding.UTF8.GetBytes(text));
        }

        var (code, expected, stderr) = await ConsoleCapture.RunAsync("predict", "--model", Model, "--input", plain);
        Assert.True(code == 0, stderr);
        (code, var stdout, stderr) = await ConsoleCapture.RunAsync("predict", "--model", Model, "--input", exported);

        Assert.True(code == 0, stderr);
        Assert.Equal(5, expected.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Equal(expected, stdout);
    }

    [Fact]
    public async Task Predict_HeaderOnly_ExitCode2()
    {
        var input = Csv("header.csv");

        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("predict", "--model", Model, "--input", input);

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.Equal($"har: '{input}' holds no frames (no row after the header); tiny-probs@1.0.0 needs 200 frames (4 s at 50 Hz) for one window.", stderr.TrimEnd());
    }

    [Fact]
    public async Task Predict_EverySessionShorterThanAWindow_ExitCode2NamingEach()
    {
        var input = Csv("sessions.csv", ("1", 150), ("2", 199));

        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("predict", "--model", Model, "--input", input);

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.Equal($"har: '{input}': none of its 2 sessions is one window long (session-1 150 frames, session-2 199 frames); tiny-probs@1.0.0 needs 200 frames (4 s at 50 Hz) for one window.", stderr.TrimEnd());
    }

    [Fact]
    public async Task Predict_OneSessionShorterThanAWindow_SkippedAndNamedTheOthersPredicted()
    {
        var input = Csv("mixed.csv", ("1", 450), ("2", 150), ("3", 200));

        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("predict", "--model", Model, "--input", input);

        Assert.Equal(0, code);
        Assert.Equal("har: skipped session-2: 150 frames, fewer than the 200 of one window", stderr.TrimEnd());
        var streams = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')[0]).ToList();
        Assert.Equal(["session-1", "session-1", "session-1", "session-3"], streams);

        (code, stdout, _) = await ConsoleCapture.RunAsync("predict", "--model", Model, "--input", input, "--json");
        Assert.Equal(0, code);
        using var doc = System.Text.Json.JsonDocument.Parse(stdout);
        Assert.Equal(4, doc.RootElement.GetProperty("items").GetArrayLength());
        var skipped = Assert.Single(doc.RootElement.GetProperty("skipped").EnumerateArray());
        Assert.Equal(("session-2", 150), (skipped.GetProperty("stream").GetString(), skipped.GetProperty("frames").GetInt32()));
    }

    [Fact]
    public async Task Predict_StreamOfMoreThan1024Windows_EveryWindowPredicted()
    {
        // 1,099 windows in one stream: the whole stream was one append, which the windower refuses above 1,024 windows
        // ("har: Stream 'long': the append would complete 1099 windows; at most 1024 per append are accepted ...").
        var input = Csv("long.csv", ("", 110_000));

        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("predict", "--model", Model, "--input", input);

        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(((110_000 - 200) / 100) + 1, lines.Length);
        Assert.Equal(Enumerable.Range(0, lines.Length), lines.Select(l => int.Parse(l.Split('\t')[1], CultureInfo.InvariantCulture)));
        Assert.StartsWith("long\t 1098\t 2196.00s –  2200.00s\t", lines[^1], StringComparison.Ordinal);
    }

    /// <summary>A CSV of random frames: one stream per (session, frames), without a session column when the session is empty.</summary>
    private string Csv(string name, params (string Session, int Frames)[] sessions)
    {
        var withSession = sessions.Any(s => s.Session.Length > 0);
        var text = new StringBuilder(withSession ? "subject,session,ax,ay,az,gx,gy,gz\n" : "ax,ay,az,gx,gy,gz\n");
        var random = new Random(3);
        foreach (var (session, frames) in sessions)
        {
            for (var f = 0; f < frames; f++)
            {
                text.Append(withSession ? $"1,{session}," : string.Empty);
                text.AppendJoin(',', Enumerable.Range(0, 6).Select(_ => (random.NextDouble() - 0.5).ToString("F4", CultureInfo.InvariantCulture))).Append('\n');
            }
        }

        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text.ToString());
        return path;
    }

    /// <summary>
    /// A dataset in the common sample format: labels.csv names 0 UNLABELED and 1 <paramref name="activity"/>; subject 1
    /// is in the train split, 2 in the test split; <paramref name="sessions"/> sessions of subject 1, every frame labelled 1.
    /// </summary>
    private string Dataset(string activity, int sessions, int frames)
    {
        var folder = Directory.CreateDirectory(Path.Combine(_dir, $"data-{Guid.NewGuid():N}")).FullName;
        File.WriteAllText(Path.Combine(folder, "labels.csv"), activity == "UNLABELED" ? "id,name\n0,UNLABELED\n" : $"id,name\n0,UNLABELED\n1,{activity}\n");
        File.WriteAllText(Path.Combine(folder, "splits.csv"), "subject,split\n1,train\n2,test\n");
        var rows = new StringBuilder("subject,session,t_index,ax,ay,az,gx,gy,gz,label\n");
        var random = new Random(7);
        for (var s = 1; s <= sessions; s++)
        {
            for (var f = 0; f < frames; f++)
            {
                rows.Append(CultureInfo.InvariantCulture, $"1,{s},{f}");
                for (var c = 0; c < 6; c++)
                {
                    rows.Append(CultureInfo.InvariantCulture, $",{random.NextDouble() - 0.5:F4}");
                }

                rows.Append(activity == "UNLABELED" ? ",0\n" : ",1\n");
            }
        }

        using var gz = new GZipStream(File.Create(Path.Combine(folder, "hapt_raw_50hz.csv.gz")), CompressionLevel.Fastest);
        gz.Write(Encoding.UTF8.GetBytes(rows.ToString()));
        return folder;
    }

    [Theory]
    [InlineData("4")]
    [InlineData("0")]
    [InlineData("-3")]
    public async Task Predict_SmoothingNotAnOddCount_ParseErrorNamingTheOption(string smoothing)
    {
        // It was "har: Smoothing must be an odd number of windows ≥ 1 (a centred vote).", after the model had loaded.
        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("predict", "--input", Path.Combine(_dir, "absent.csv"), "--model", Model, "--segments", "--smoothing", smoothing);

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.StartsWith($"har: --smoothing is {smoothing}; expected an odd number of windows, 1 or more: ", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Predict_SmoothingWithoutSegments_ParseError()
    {
        // --smoothing without --segments did nothing, silently: the lines per window are not smoothed.
        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("predict", "--input", Path.Combine(_dir, "absent.csv"), "--model", Model, "--smoothing", "5");

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.StartsWith("har: --smoothing needs --segments: ", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Eval_SamplesFileNamedGzThatIsNot_ExitCode2NamingTheFile()
    {
        // It said "har: The archive entry was compressed using an unsupported compression method.", naming no file.
        var data = Dataset("WALKING", 1, 450);
        var samples = Path.Combine(data, "hapt_raw_50hz.csv.gz");
        await File.WriteAllTextAsync(samples, "subject,session,t_index,ax,ay,az,gx,gy,gz,label\n", TestContext.Current.CancellationToken);

        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("eval", "--data", data, "--model", Model, "--split", "all");

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.StartsWith($"har: '{samples}' does not decompress at line 1 (", stderr, StringComparison.Ordinal);
        Assert.Single(stderr.TrimEnd().Split('\n'));
    }
}
