using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Har.Testing;

namespace Har.Drift.Tests.Cli;

/// <summary>
/// Runs the built <c>har</c> executable (samples/Har.Cli, built before this project) on small temp files and compares
/// its output with the library call on the same data and with the SciPy/NumPy reference vectors.
/// </summary>
public sealed class DriftCommandsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("har-drift-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string, string, string> KsCases => new()
    {
        { "golden_50_vs_plastic_80", "two-sided", "auto" },
        { "ties_6_8", "less", "exact" },
        { "golden_1000_vs_plastic_sq_600", "greater", "asymp" },
        { "mod037_1000_vs_pow1.2_1000", "two-sided", "asymp" },
    };

    [Theory]
    [MemberData(nameof(KsCases))]
    public void Ks_Json_EqualsLibraryAndScipy(string pair, string alternative, string method)
    {
        var p = ReferenceVectors.KsPair(pair);
        var x = ReferenceVectors.KsSample(p, "x");
        var y = ReferenceVectors.KsSample(p, "y");
        var (code, stdout, stderr) = Har("drift", "ks", Numbers("x.txt", x), Numbers("y.txt", y), "--alternative", alternative, "--method", method, "--json");

        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        var alt = alternative switch { "less" => KsAlternative.Less, "greater" => KsAlternative.Greater, _ => KsAlternative.TwoSided };
        var m = method switch { "exact" => KsMethod.Exact, "asymp" => KsMethod.Asymptotic, _ => KsMethod.Auto };
        var lib = KolmogorovSmirnov.Test(x, y, alt, m);
        Assert.Equal(lib.Statistic, root.GetProperty("statistic").GetDouble());
        Assert.Equal(lib.PValue, root.GetProperty("pvalue").GetDouble());
        Assert.Equal(x.Length, root.GetProperty("n").GetInt32());
        Assert.Equal(y.Length, root.GetProperty("m").GetInt32());

        var scipy = p.GetProperty("results").GetProperty(alternative).GetProperty(method);
        Assert.Equal(scipy.GetProperty("resolved_method").GetString(), root.GetProperty("method").GetString());
        Assert.Equal(ReferenceVectors.Number(scipy.GetProperty("statistic")), root.GetProperty("statistic").GetDouble());
        var expected = ReferenceVectors.Number(scipy.GetProperty("pvalue"));
        var got = root.GetProperty("pvalue").GetDouble();
        Assert.True(Math.Abs(got - expected) <= Math.Max(1e-9, 1e-6 * Math.Abs(expected)), $"p {got} vs SciPy {expected}");
    }

    [Theory]
    [InlineData("golden_1000_vs_plastic_pow1.5_800")]
    [InlineData("golden_1000_vs_narrow_500_empty_bins")]
    [InlineData("mod037_ties_1000_vs_pow1.2_1000")]
    public void Psi_Json_EqualsLibraryAndNumpy(string pair)
    {
        var p = ReferenceVectors.PsiPair(pair);
        var reference = ReferenceVectors.Numbers(p.GetProperty("ref"));
        var current = ReferenceVectors.Numbers(p.GetProperty("cur"));
        var (code, stdout, stderr) = Har("drift", "psi", Numbers("ref.txt", reference), Numbers("cur.txt", current), "--bins", "10", "--json");

        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        var lib = PopulationStabilityIndex.Compute(reference, current, 10);
        Assert.Equal(lib.Value, root.GetProperty("psi").GetDouble());
        Assert.Equal(lib.ReferenceCounts, ReferenceVectors.Longs(root.GetProperty("ref_counts")));
        Assert.Equal(lib.CurrentCounts, ReferenceVectors.Longs(root.GetProperty("cur_counts")));

        var numpy = p.GetProperty("quantile10_eps1e-4");
        Assert.Equal(ReferenceVectors.Longs(numpy.GetProperty("ref_counts")), ReferenceVectors.Longs(root.GetProperty("ref_counts")));
        Assert.Equal(ReferenceVectors.Longs(numpy.GetProperty("cur_counts")), ReferenceVectors.Longs(root.GetProperty("cur_counts")));
        Assert.Equal(ReferenceVectors.Numbers(numpy.GetProperty("inner_edges")), ReferenceVectors.Numbers(root.GetProperty("inner_edges")));
        Assert.Equal(ReferenceVectors.Number(numpy.GetProperty("psi")), root.GetProperty("psi").GetDouble(), 12);
    }

    [Fact]
    public void Ks_PlainText_PrintsStatisticAndPValue()
    {
        double[] x = [0.1, 0.2, 0.3, 0.4, 0.5];
        double[] y = [0.35, 0.45, 0.55, 0.65, 0.75, 0.85];
        var (code, stdout, _) = Har("drift", "ks", Numbers("a.txt", x), Numbers("b.txt", y));
        var lib = KolmogorovSmirnov.Test(x, y);

        Assert.Equal(0, code);
        Assert.Contains($"statistic: {lib.Statistic.ToString("R", CultureInfo.InvariantCulture)}", stdout, StringComparison.Ordinal);
        Assert.Contains($"pvalue: {lib.PValue.ToString("R", CultureInfo.InvariantCulture)}", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Ks_NonNumericLine_ExitCode2WithTheLine()
    {
        var a = Path.Combine(_dir, "bad.txt");
        File.WriteAllText(a, "0.5\nabc\n");
        var b = Numbers("ok.txt", [1.0, 2.0]);
        var (code, _, stderr) = Har("drift", "ks", a, b, "--json");

        Assert.Equal(2, code);
        Assert.Contains("line 2", stderr, StringComparison.Ordinal);
        Assert.Contains("one number per line", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("ax,ay,az,gx,gy,gz\n0.1,0.2,0.3,0.4,0.5,0.6\n0.1,0.2,0.3\n", "line 3 has 3 fields; expected 6")]
    [InlineData("ax,ay,az,gx,gy,gz\n0.1,0.2,0.3,0.4,0.5,0.6\n0.1,0.2,abc,0.4,0.5,0.6\n", "line 3 column 'az' is 'abc'; expected a number")]
    [InlineData("t_ms,ax,ay,az,gx,gy,gz\n0.5,0.1,0.2,0.3,0.4,0.5,0.6\n", "line 2 column 't_ms' is '0.5'; expected whole milliseconds")]
    public void Check_MalformedRow_ExitCode2NamingTheLine(string csv, string expected)
    {
        // A row cut short once crashed the command with an unhandled IndexOutOfRangeException and a stack trace.
        var profilePath = Path.Combine(_dir, "profile.json");
        Synthetic.Profile(windowLength: 1000).Save(profilePath);
        var input = Path.Combine(_dir, "malformed.csv");
        File.WriteAllText(input, csv);
        var (code, _, stderr) = Har("drift", "check", "--profile", profilePath, "--input", input);

        Assert.Equal(2, code);
        Assert.StartsWith("har:", stderr, StringComparison.Ordinal);
        Assert.Contains(expected, stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_GzipSemicolonsAndDecimalCommas_TheSameReportAsThePlainCsv()
    {
        // A spreadsheet's export, compressed: refused with "has no column(s) ax, ay, az, gx, gy, gz".
        var profilePath = Path.Combine(_dir, "profile.json");
        Synthetic.Profile(windowLength: 1000).Save(profilePath);
        var plain = Csv("device.csv", Synthetic.Recording(seed: 3, frames: 2500));
        var exported = Path.Combine(Directory.CreateDirectory(Path.Combine(_dir, "exported")).FullName, "device.csv.gz");
        using (var zip = new System.IO.Compression.GZipStream(File.Create(exported), System.IO.Compression.CompressionLevel.Fastest))
        {
            zip.Write(System.Text.Encoding.UTF8.GetBytes(File.ReadAllText(plain).Replace(',', ';').Replace('.', ',')));
        }

        var (code, expected, stderr) = Har("drift", "check", "--profile", profilePath, "--input", plain, "--json");
        Assert.True(code is 0 or 1, stderr);
        var (exportedCode, stdout, exportedStderr) = Har("drift", "check", "--profile", profilePath, "--input", exported, "--json");

        Assert.Equal(code, exportedCode);
        Assert.Equal(stderr, exportedStderr);
        Assert.Equal(4, JsonDocument.Parse(expected).RootElement.GetProperty("windows").GetInt32());
        Assert.Equal(expected.Replace(plain, exported, StringComparison.Ordinal), stdout);
    }

    [Theory]
    [InlineData("--data", "har: --input and --data cannot be given together: --input is one device's recording, --data a folder whose every session is a device; check them one at a time.")] // --data was ignored
    [InlineData("--split", "har: --split needs --data: it selects the sessions of a --data folder; an --input recording has no split.")] // --split was ignored
    public void Check_OptionThatWouldBeIgnored_ExitCode2NamingBoth(string option, string expected)
    {
        var profilePath = Path.Combine(_dir, "profile.json");
        Synthetic.Profile(windowLength: 1000).Save(profilePath);
        var input = Csv("device.csv", Synthetic.Recording(seed: 3, frames: 1200));

        var (code, stdout, stderr) = Har("drift", "check", "--profile", profilePath, "--input", input, option, option == "--data" ? CommonFormatFolder() : "test");

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.StartsWith(expected, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_NeitherInputNorData_ExitCode2SayingWhatToPass()
    {
        var (code, _, stderr) = Har("drift", "check", "--profile", Path.Combine(_dir, "absent.json"));

        Assert.Equal(2, code);
        Assert.StartsWith("har: Pass --input <recording.csv> (one device) or --data <dataset folder> (every session a device).", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_ModelWithAProfileWithoutOutputs_ExitCode2BeforeTheInputIsRead()
    {
        // It was found after every window had been scored; the input here does not exist, and is not looked for.
        var profilePath = Path.Combine(_dir, "profile.json");
        Synthetic.Profile(windowLength: 1000).Save(profilePath);
        var model = Path.Combine(TestPaths.RepoRoot, "models", "har-cnn-bilstm-1.1.0.onnx");

        var (code, _, stderr) = Har("drift", "check", "--profile", profilePath, "--input", Path.Combine(_dir, "absent.csv"), "--model", model);

        Assert.Equal(2, code);
        Assert.StartsWith("har: The profile has no model outputs to compare with; build it with 'har drift profile --model <model.onnx>'.", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("-5")] // an unhandled OverflowException in the monitor's frame ring, with a stack trace
    [InlineData("0")] // accepted: "windows of 0 samples every 1"
    public void Check_ProfileWithAWindowLengthOutOfBounds_ExitCode2NamingTheFieldAndTheRange(string segmentLength)
    {
        var profilePath = Path.Combine(_dir, "edited.json");
        var json = System.Text.Json.Nodes.JsonNode.Parse(Synthetic.Profile(windowLength: 1000).ToJson())!;
        json["SegmentLength"] = int.Parse(segmentLength, CultureInfo.InvariantCulture);
        File.WriteAllText(profilePath, json.ToJsonString());
        var input = Csv("device.csv", Synthetic.Recording(seed: 3, frames: 1200));

        var (code, stdout, stderr) = Har("drift", "check", "--profile", profilePath, "--input", input);

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.Equal($"har: '{profilePath}': The reference profile's SegmentLength is {segmentLength}; expected 16 to 10,000,000 samples per window.", stderr.TrimEnd());
    }

    [Theory]
    [InlineData("0")] // looped forever (and ignored SIGTERM) once the data was read
    [InlineData("-1")]
    [InlineData("499")]
    [InlineData("10000001")]
    public void Profile_WindowOutOfRange_ExitCode2BeforeTheDataIsRead(string window)
    {
        // The data folder does not exist: the window is refused before it is looked for.
        var (code, stdout, stderr) = Har("drift", "profile", "--data", Path.Combine(_dir, "no-such-data"), "-o", Path.Combine(_dir, "p.json"), "--window", window);

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.StartsWith($"har: --window is {window}; expected 500 to 10,000,000: the drift tests score a window only when it holds 500 samples per channel", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("no-such-data", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_dir, "p.json")));
    }

    [Theory]
    [InlineData("--accuracy-subjects", "28", "har: --accuracy-subjects needs --model: it measures the model's accuracy")]
    [InlineData("--model", "absent.onnx", "har: --model '")]
    [InlineData("-o", "no-such-folder/p.json", "har: --output '")]
    public void Profile_OptionsThatCannotWork_ExitCode2BeforeTheDataIsRead(string option, string value, string expected)
    {
        // Each was found only after the data had been read and the profile built (minutes on the HAPT data).
        string[] args = ["drift", "profile", "--data", Path.Combine(_dir, "no-such-data"), "--window", "500"];
        args = option == "-o" ? [.. args, option, Path.Combine(_dir, value)] : [.. args, "-o", Path.Combine(_dir, "p.json"), option, option == "--model" ? Path.Combine(_dir, value) : value];

        var (code, stdout, stderr) = Har(args);

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.StartsWith(expected, stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("no-such-data", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("subject,split\n1;train\n", "expected 'subject,split'")]
    [InlineData("subject,split\n1,train\n", "at most 1 frames long; record longer sessions or pass a smaller --window (now 3000)")]
    public void Profile_MalformedOrTooShortData_ExitCode2SayingWhatWasExpected(string splits, string expected)
    {
        // Both once ended in an unhandled exception with a stack trace (IndexOutOfRangeException; InvalidOperationException).
        var data = Path.Combine(_dir, "data");
        Directory.CreateDirectory(data);
        File.WriteAllText(Path.Combine(data, "labels.csv"), "id,name\n1,WALKING\n");
        File.WriteAllText(Path.Combine(data, "splits.csv"), splits);
        File.WriteAllText(Path.Combine(data, "samples.csv"), "subject,session,t_index,ax,ay,az,gx,gy,gz,label\n1,1,0,1,0,0,0,0,0,1\n");
        var (code, _, stderr) = Har("drift", "profile", "--data", data, "-o", Path.Combine(_dir, "p.json"));

        Assert.Equal(2, code);
        Assert.StartsWith("har:", stderr, StringComparison.Ordinal);
        Assert.Contains(expected, stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("id,name\n1\n")]
    [InlineData("id,name\nx,WALKING\n")]
    [InlineData("id,name\n300,WALKING\n")]
    [InlineData("id,name\n")]
    public void LabelNames_MalformedLabelsFile_InvalidDataNamingTheFile(string content)
    {
        // har eval and drift profile --model read it; a short line threw IndexOutOfRangeException.
        var data = Path.Combine(_dir, "labels-data");
        Directory.CreateDirectory(data);
        File.WriteAllText(Path.Combine(data, "labels.csv"), content);

        var ex = Assert.Throws<InvalidDataException>(() => global::Har.Inference.Data.SensorDataset.LoadLabelNames(data));
        Assert.Contains("labels.csv", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'id,name'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Psi_MissingFile_ExitCode2()
    {
        var (code, _, stderr) = Har("drift", "psi", Path.Combine(_dir, "absent.txt"), Numbers("cur.txt", [1.0, 2.0]));

        Assert.Equal(2, code);
        Assert.StartsWith("har:", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("2147483647")]
    [InlineData("10001")]
    [InlineData("1")]
    [InlineData("-3")]
    public void Psi_BinsOutOfRange_ExitCode2WithTheAcceptedRange(string bins)
    {
        // int.MaxValue bins once ended in an unhandled OutOfMemoryException (100,000,000 ran for minutes).
        var (code, stdout, stderr) = Har("drift", "psi", Numbers("ref.txt", [1.0, 2.0, 3.0]), Numbers("cur.txt", [2.0, 3.0]), "--bins", bins);

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.StartsWith($"har: --bins is {bins}; expected 2 to 10,000: ", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Psi_MostBins_Computed()
    {
        var (code, stdout, stderr) = Har("drift", "psi", Numbers("ref.txt", [1.0, 2.0, 3.0]), Numbers("cur.txt", [2.0, 3.0]), "--bins", "10000", "--json");

        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        Assert.Equal(10_000, doc.RootElement.GetProperty("ref_counts").GetArrayLength());
    }

    [Fact]
    public void Check_Json_EqualsLibraryScoringOfTheSameWindows()
    {
        var profile = Synthetic.Profile(windowLength: 1000);
        var profilePath = Path.Combine(_dir, "profile.json");
        profile.Save(profilePath);
        var frames = Synthetic.Recording(seed: 7, frames: 2000);
        frames = [.. frames.Select((v, i) => i % 6 == 0 ? v + 0.8f : v)]; // ax offset: at least the gravity check fires
        var csv = new StringBuilder("t_ms,ax,ay,az,gx,gy,gz\n");
        for (var f = 0; f < 2000; f++)
        {
            csv.Append(CultureInfo.InvariantCulture, $"{f * 20}");
            for (var c = 0; c < 6; c++)
            {
                csv.Append(',').Append(frames[(f * 6) + c].ToString("R", CultureInfo.InvariantCulture));
            }

            csv.Append('\n');
        }

        var input = Path.Combine(_dir, "input.csv");
        File.WriteAllText(input, csv.ToString());
        var (code, stdout, stderr) = Har("drift", "check", "--profile", profilePath, "--input", input, "--json");

        var scorer = new DriftScorer(ReferenceProfile.Load(profilePath));
        var stamps = Enumerable.Range(0, 2000).Select(f => (long)f * 20).ToArray();
        // The command scores the last window every half window, as the serving monitor does: frames 0, 500 and 1000 on.
        var expected = new[]
        {
            scorer.Score(frames.AsSpan(0, 6000), stamps.AsSpan(0, 1000)),
            scorer.Score(frames.AsSpan(3000, 6000), stamps.AsSpan(500, 1000)),
            scorer.Score(frames.AsSpan(6000, 6000), stamps.AsSpan(1000, 1000)),
        };
        Assert.True(expected.Any(r => r.Flagged), "the injected offset should flag the data");
        Assert.True(code == 1, $"exit code {code}: {stderr}");
        using var doc = JsonDocument.Parse(stdout);
        var verdict = doc.RootElement.GetProperty("verdict").GetString();
        Assert.Equal(expected.Any(r => r.AnyDrifted) ? "Drifted" : verdict, verdict); // a raised device alarm also makes it Drifted
        Assert.Contains(verdict, new[] { "Drifted", "Stable" }); // enums as names
        Assert.InRange(doc.RootElement.GetProperty("flagged").GetInt32(), 1, 3);
        var reports = doc.RootElement.GetProperty("reports").EnumerateArray().Select(r => r.GetProperty("report")).ToList();
        Assert.Equal(3, reports.Count);
        for (var w = 0; w < 3; w++)
        {
            Assert.Equal(profile.Hash, reports[w].GetProperty("ReferenceHash").GetString());
            var channels = reports[w].GetProperty("Channels").EnumerateArray().ToList();
            for (var c = 0; c < 6; c++)
            {
                Assert.Equal(expected[w].Channels[c].Channel, channels[c].GetProperty("Channel").GetString());
                Assert.Equal(expected[w].Channels[c].Verdict.ToString(), channels[c].GetProperty("Verdict").GetString()); // enums as names
                Assert.Equal(expected[w].Channels[c].Ks!.Statistic, channels[c].GetProperty("Ks").GetProperty("Statistic").GetDouble());
            }

            // The first window has no device history in either; later ones also see the device's earlier minutes.
            var kinds = reports[w].GetProperty("Findings").EnumerateArray().Select(f => f.GetProperty("Kind").GetString()).ToArray();
            if (w == 0)
            {
                Assert.Equal(expected[w].Findings.Select(f => f.Kind.ToString()).ToArray(), kinds);
            }
        }
    }

    [Fact]
    public void Check_PlainTextPiped_OverallVerdictFirstAndWholeLines()
    {
        var profile = Synthetic.Profile(windowLength: 1000);
        var profilePath = Path.Combine(_dir, "profile.json");
        profile.Save(profilePath);
        var frames = Synthetic.Recording(seed: 8, frames: 2000);
        for (var f = 200; f < 900; f++)
        {
            frames[(f * 6) + 1] = frames[(200 * 6) + 1]; // ay stuck
        }

        var input = Path.Combine(_dir, "stuck.csv");
        File.WriteAllLines(input, ["ax,ay,az,gx,gy,gz", .. Enumerable.Range(0, 2000).Select(f => string.Join(',', Enumerable.Range(0, 6).Select(c => frames[(f * 6) + c].ToString("R", CultureInfo.InvariantCulture))))]);
        var (code, stdout, stderr) = Har("drift", "check", "--profile", profilePath, "--input", input);

        Assert.True(code == 1, $"exit code {code}: {stderr}");
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches(@"^(Drifted|Stable): [01] of 1 device alarmed( \([^)]*\))?; [123] of 3 windows flagged \(\d drifted, [123] with sensor findings\); reference [0-9a-f]{12}", lines[0]);
        Assert.Contains(lines, l => l.Contains("Flatline ay:", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => !l.Contains(' ', StringComparison.Ordinal)); // no word-per-line wrapping
    }

    [Fact]
    public void Check_ProfileWithACalibratedAlarm_VerdictAndExitCodeFromTheDevicesAlarms()
    {
        // A 6-axis profile of eight simulated people: its alarm is calibrated, so a device is judged by its alarm.
        var profile = global::Har.Drift.Tests.Physics.SimulatedProfiles.RigidImu;
        Assert.NotNull(profile.Alarms);
        var profilePath = Path.Combine(_dir, "imu-profile.json");
        profile.Save(profilePath);
        var healthy = global::Har.Drift.Tests.Physics.SimulatedImu.Record(seed: 970, seconds: 60).Interleaved();
        var degrees = InputFault.Standard(profile.ChannelNames, 50).Single(f => f.Description == "gyroscope in deg/s")
            .Apply(global::Har.Drift.Tests.Physics.SimulatedImu.Record(seed: 971, seconds: 60).Interleaved(), 6);

        var (code, stdout, stderr) = Har("drift", "check", "--profile", profilePath, "--input", Csv("healthy.csv", healthy), "--json");
        Assert.True(code == 0, $"exit code {code}: {stderr}\n{stdout}");
        using (var doc = JsonDocument.Parse(stdout))
        {
            Assert.Equal("Stable", doc.RootElement.GetProperty("verdict").GetString());
            Assert.True(doc.RootElement.GetProperty("alarm_calibrated").GetBoolean());
            Assert.Empty(doc.RootElement.GetProperty("alarms").EnumerateArray());
        }

        (code, stdout, stderr) = Har("drift", "check", "--profile", profilePath, "--input", Csv("degrees.csv", degrees));
        Assert.True(code == 1, $"exit code {code}: {stderr}\n{stdout}");
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches(@"^Drifted: 1 of 1 device alarmed \(Units 1\); single-window checks flagged \d+ of \d+ windows \(\d+ drifted, \d+ with sensor findings: evidence the alarms weigh, not alarms\); reference [0-9a-f]{12}", lines[0]);
        Assert.Contains(lines, l => l.StartsWith("degrees from frame ", StringComparison.Ordinal) && l.Contains("ALARM Units", StringComparison.Ordinal));
    }

    private string Csv(string name, float[] interleaved)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllLines(path, ["ax,ay,az,gx,gy,gz", .. Enumerable.Range(0, interleaved.Length / 6).Select(f => string.Join(',', Enumerable.Range(0, 6).Select(c => interleaved[(f * 6) + c].ToString("R", CultureInfo.InvariantCulture))))]);
        return path;
    }

    [Fact]
    public void Check_DataFolderInTheCommonFormat_ScoresEverySessionAsADevice()
    {
        var profile = Synthetic.Profile(windowLength: 1000);
        var profilePath = Path.Combine(_dir, "profile.json");
        profile.Save(profilePath);
        var folder = CommonFormatFolder();
        var (code, stdout, stderr) = Har("drift", "check", "--profile", profilePath, "--data", folder, "--split", "all", "--json");

        Assert.True(code is 0 or 1, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var devices = doc.RootElement.GetProperty("reports").EnumerateArray().Select(r => r.GetProperty("device").GetString()).Distinct().ToArray();
        Assert.Equal(["subject-1/session-1", "subject-2/session-2"], devices);
        Assert.Equal(4, doc.RootElement.GetProperty("windows").GetInt32()); // 1500 frames = a window and a (completed) half window each
        Assert.Contains(doc.RootElement.GetProperty("verdict").GetString(), new[] { "Stable", "Drifted" });
    }

    [Fact]
    public void ProfileAndCheck_WithModel_LabelsMatchedByNameUnknownActivitiesLeftOutOutputsScored()
    {
        var folder = CommonFormatFolder(frames: 5000);
        var model = Path.Combine(TestPaths.RepoRoot, "models", "har-cnn-bilstm-1.1.0.onnx");
        var profilePath = Path.Combine(_dir, "with-outputs.json");
        var (code, stdout, stderr) = Har("drift", "profile", "--data", folder, "--split", "all", "--window", "500", "--model", model, "-o", profilePath);

        Assert.True(code == 0, stderr);
        Assert.Matches(@"left out \d+ windows of activities the model does not know: JOGGING \d+", stdout);
        var profile = ReferenceProfile.Load(profilePath);
        Assert.NotNull(profile.Outputs);
        Assert.Contains("WALKING", profile.Outputs.Labels);
        Assert.DoesNotContain("JOGGING", profile.Outputs.Labels);

        (code, stdout, stderr) = Har("drift", "check", "--profile", profilePath, "--data", folder, "--model", model, "--json");
        Assert.True(code is 0 or 1, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var outputs = doc.RootElement.GetProperty("outputs");
        Assert.Contains(outputs.GetProperty("Verdict").GetString(), new[] { "Stable", "Drifted" });
        Assert.Equal("class_mix", outputs.GetProperty("ClassMix").GetProperty("Test").GetString());
    }

    /// <summary>A dataset in the common sample format: two subjects, one session each; the second half of each session is JOGGING (an activity the models do not know).</summary>
    private string CommonFormatFolder(int frames = 1500)
    {
        var folder = Directory.CreateDirectory(Path.Combine(_dir, "dataset")).FullName;
        File.WriteAllText(Path.Combine(folder, "labels.csv"), "id,name,kind\n0,UNLABELED,unlabeled\n1,WALKING,dynamic\n13,JOGGING,dynamic\n");
        File.WriteAllText(Path.Combine(folder, "splits.csv"), "subject,split\n1,train\n2,test\n");
        using var gz = new System.IO.Compression.GZipStream(File.Create(Path.Combine(folder, "hapt_raw_50hz.csv.gz")), System.IO.Compression.CompressionLevel.Fastest);
        using var w = new StreamWriter(gz);
        w.Write("subject,session,t_index,ax,ay,az,gx,gy,gz,label\n");
        foreach (var (subject, session, seed) in new[] { (1, 1, 11), (2, 2, 12) })
        {
            var data = Synthetic.Recording(seed, frames);
            for (var f = 0; f < frames; f++)
            {
                w.Write(string.Create(CultureInfo.InvariantCulture, $"{subject},{session},{f}"));
                for (var c = 0; c < 6; c++)
                {
                    w.Write(',');
                    w.Write(data[(f * 6) + c].ToString("F6", CultureInfo.InvariantCulture));
                }

                w.Write(f < frames / 2 ? ",1\n" : ",13\n");
            }
        }

        return folder;
    }

    private string Numbers(string name, double[] values)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllLines(path, values.Select(v => v.ToString("R", CultureInfo.InvariantCulture)));
        return path;
    }

    private static (int Code, string Stdout, string Stderr) Har(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(HarDll);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["NO_COLOR"] = "1";
        using var process = Process.Start(psi)!;
        var stderrTask = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout, stderrTask.GetAwaiter().GetResult());
    }

    /// <summary>The CLI built by the ProjectReference of this test project, in the same configuration as the tests.</summary>
    private static string HarDll
    {
        get
        {
            var configuration = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name; // bin/<Configuration>/<tfm>/
            var tfm = new DirectoryInfo(AppContext.BaseDirectory).Name;
            var path = Path.Combine(TestPaths.RepoRoot, "samples", "Har.Cli", "bin", configuration, tfm, "har.dll");
            Assert.True(File.Exists(path), $"The har CLI was not built at {path}; build tests/Har.Drift.Tests (it builds samples/Har.Cli first).");
            return path;
        }
    }
}
