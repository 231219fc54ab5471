using Har.Cli.Commands;

namespace Har.Cli.Tests.Commands;

/// <summary>
/// <c>har drift profile</c> and <c>check</c> read the data's columns by channel name. Found from outside: a model whose card
/// lists the gyroscope first was refused ("reads channels gx gy gz ax ay az; the data has ax ay az gx gy gz"), and a
/// profile built in the data's order would have been read by position by the service, which feeds the drift monitor the
/// windows in the model's order.
/// </summary>
[Collection(ConsoleTests.Name)]
public sealed class DriftCommandsTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("har-drift-cli-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void Columns_ReordersAndSelectsByName_RefusesAMissingChannelNamingIt()
    {
        string[] data = ["ax", "ay", "az", "gx", "gy", "gz"];
        float[] frames = [1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16];

        Assert.Same(frames, DriftCommands.Columns(frames, data, data, "the model"));
        Assert.Equal([4, 5, 6, 1, 2, 3, 14, 15, 16, 11, 12, 13], DriftCommands.Columns(frames, data, ["gx", "gy", "gz", "ax", "ay", "az"], "the model"));
        Assert.Equal([3, 1, 13, 11], DriftCommands.Columns(frames, data, ["az", "ax"], "the model"));
        var error = Assert.Throws<InvalidDataException>(() => DriftCommands.Columns(frames, data, ["ax", "mx"], "the profile"));
        Assert.Equal("The profile reads channel mx (ax mx); the data has ax ay az gx gy gz.", error.Message);
    }

    [Fact]
    public async Task Profile_WithAGyroscopeFirstModel_IsBuiltInTheModelsChannelOrder()
    {
        var hapt = TestPaths.RequireSharedData();
        var model = Path.Combine(_root, "gyro-first-1.0.0.onnx");
        File.WriteAllBytes(model, OnnxModelEditor.Rewrite(File.ReadAllBytes(TestPaths.ChampionModel), new Dictionary<string, string> { ["har.channels"] = "[\"gx\", \"gy\", \"gz\", \"ax\", \"ay\", \"az\"]" }, inputTimeDimension: null));
        var output = Path.Combine(_root, "profile.json");

        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("drift", "profile", "--data", hapt, "--split", "test", "--model", model, "--output", output);

        Assert.True(code == 0, $"exit {code}: {stderr}{stdout}");
        Assert.Equal(["gx", "gy", "gz", "ax", "ay", "az"], Har.Drift.ReferenceProfile.Load(output).ChannelNames);
    }

    [Theory]
    [InlineData("psi", "NaN")] // PSI counted NaN in the first bin: psi 8.28, exit code 0
    [InlineData("psi", "Infinity")]
    [InlineData("psi", "1e400")] // parsed as infinity
    [InlineData("ks", "-Infinity")]
    public async Task Test_NonFiniteValueInASample_ExitCode2NamingTheLine(string test, string value)
    {
        var reference = Path.Combine(_root, "reference.txt");
        var current = Path.Combine(_root, "current.txt");
        await File.WriteAllLinesAsync(reference, Enumerable.Range(1, 100).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), TestContext.Current.CancellationToken);
        await File.WriteAllLinesAsync(current, ["1", value, "3"], TestContext.Current.CancellationToken);

        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("drift", test, reference, current);

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.Equal($"har: '{current}' line 2 is '{value}'; expected a finite number (NaN and infinities, or values beyond ±1.8e308, are not samples).", stderr.TrimEnd());
    }

    [Theory]
    [InlineData("ks")]
    [InlineData("psi")]
    public async Task Test_SampleThatIsAFolderOrEndless_ExitCode2SayingWhatWasExpected(string test)
    {
        var reference = Path.Combine(_root, "reference.txt");
        await File.WriteAllLinesAsync(reference, ["1", "2", "3"], TestContext.Current.CancellationToken);

        // A folder was "Access to the path '…' is denied."
        var (code, _, stderr) = await ConsoleCapture.RunAsync("drift", test, reference, _root);
        Assert.Equal(2, code);
        Assert.Equal($"har: '{_root}' is a folder; expected a sample file, one number per line.", stderr.TrimEnd());

        // A line without an end is refused at the bound, not read until the memory runs out.
        var endless = Path.Combine(_root, "endless.txt");
        await File.WriteAllTextAsync(endless, new string('1', 70_000), TestContext.Current.CancellationToken);
        (code, _, stderr) = await ConsoleCapture.RunAsync("drift", test, reference, endless);
        Assert.Equal(2, code);
        Assert.Equal($"har: '{endless}' line 1 is longer than 65,536 characters; expected a sample file, one number per line (is it a binary file?).", stderr.TrimEnd());
    }

    [Fact]
    public async Task Profile_OutputIsAFolder_ExitCode2BeforeTheDataIsRead()
    {
        // It was found after the data had been read and the profile built: "Is a directory : '<folder>'".
        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("drift", "profile", "--data", Path.Combine(_root, "no-data-here"), "--output", _root);

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.Equal($"har: --output '{_root}' is a folder; expected the path of the profile file to write, e.g. {Path.Combine(_root, "profile.json")}.", stderr.TrimEnd());
    }
}
