using Har.Cli.Commands;

namespace Har.Cli.Tests.Commands;

/// <summary>
/// <c>har drift profile</c> and <c>check</c> read the data's columns by channel name. Found from outside: a model whose card
/// lists the gyroscope first was refused ("reads channels gx gy gz ax ay az; the data has ax ay az gx gy gz"), and a
/// profile built in the data's order would have been read by position by the service, which feeds the drift monitor the
/// windows in the model's order.
/// </summary>
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
}
