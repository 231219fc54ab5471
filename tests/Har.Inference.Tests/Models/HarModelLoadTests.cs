namespace Har.Inference.Tests.Models;

public sealed class HarModelLoadTests
{
    [Theory]
    [InlineData("bad-window-length.onnx", ModelCardKeys.WindowLength, "card says window length 128 but the graph input 'input' has 200 time steps")]
    [InlineData("bad-label-count.onnx", ModelCardKeys.Labels, "card lists 10 labels but the graph output 'output' has 12 classes")]
    [InlineData("bad-channel-count.onnx", ModelCardKeys.Channels, "card lists 6 channels but the graph input 'input' has 3")]
    [InlineData("bad-zero-std.onnx", ModelCardKeys.NormalizationStd, "has std 0 for channel 'az'; expected a finite number > 0")]
    [InlineData("bad-missing-mean.onnx", ModelCardKeys.NormalizationMean, "'har.normalization.mean' is missing or empty")]
    [InlineData("bad-rank.onnx", null, "has rank 2; expected rank 3 [N, 200, 6]")]
    [InlineData("bad-context-frames.onnx", ModelCardKeys.ContextFrames, "card says window length 200 plus 100 context frames (300) but the graph input 'input' has 200 time steps")]
    [InlineData("bad-channels-first.onnx", null, "is [N, 6, 200], channels before time; expected [N, 200, 6]")]
    [InlineData("bad-output-logits-as-probabilities.onnx", ModelCardKeys.Output, "says 'probabilities', but on probe window 1 of 8 run at load the graph's output 'output' ranges from")]
    [InlineData("bad-output-probabilities-as-logits.onnx", ModelCardKeys.Output, "says 'logits', but on all 8 probe windows run at load every row of the graph's output 'output' is already a probability distribution")]
    public void Load_BrokenCardOrShape_IsRefusedNamingTheProblem(string file, string? key, string expected)
    {
        var ex = Assert.Throws<ModelCardException>(() => HarModel.Load(Fixture.Model(file), Fixture.Options()));

        Assert.Equal(key, ex.Key);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_CorruptFile_IsRefused()
    {
        var path = Path.Combine(Path.GetTempPath(), $"har-corrupt-{Guid.NewGuid():N}.onnx");
        try
        {
            var bytes = File.ReadAllBytes(Fixture.Probs);
            File.WriteAllBytes(path, bytes.AsSpan(0, bytes.Length / 2).ToArray());
            var ex = Assert.Throws<ModelCardException>(() => HarModel.Load(path, Fixture.Options()));
            Assert.Contains("is not a loadable ONNX model", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Load_MissingFile_ThrowsFileNotFound()
    {
        var ex = Assert.Throws<FileNotFoundException>(() => HarModel.Load(Fixture.Model("nope.onnx")));
        Assert.Contains("does not exist", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_RelativePath_ThatIsMissing_SaysWhereItLooked()
    {
        // Found by a new user running the README's examples outside a clone: "Model file 'models/…' does not exist."
        // did not say that the path is read from the working directory, nor which folder that was.
        var relative = Path.Combine("no-such-folder", "har-model.onnx");
        var ex = Assert.Throws<FileNotFoundException>(() => HarModel.Load(relative));
        Assert.Contains(Path.GetFullPath(relative), ex.Message, StringComparison.Ordinal);
        Assert.Contains("working directory", ex.Message, StringComparison.Ordinal);
        Assert.Equal(relative, ex.FileName);
    }

    [Fact]
    public void Load_AFolder_SaysItIsAFolder_NotThatItDoesNotExist()
    {
        var folder = Path.GetDirectoryName(Fixture.Model("nope.onnx"))!;
        Assert.True(Directory.Exists(folder));
        var model = Assert.Throws<FileNotFoundException>(() => HarModel.Load(folder));
        var card = Assert.Throws<FileNotFoundException>(() => ModelCard.Load(folder));
        foreach (var ex in new[] { model, card })
        {
            Assert.Contains("is a folder", ex.Message, StringComparison.Ordinal);
            Assert.Contains("expected an .onnx file", ex.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("does not exist", ex.Message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData(nameof(HarModelOptions.MaxBatchSize), 0)]
    [InlineData(nameof(HarModelOptions.Workers), 0)]
    [InlineData(nameof(HarModelOptions.QueueCapacity), 0)]
    public void Load_InvalidOptions_Throws(string property, int value)
    {
        var options = Fixture.Options();
        typeof(HarModelOptions).GetProperty(property)!.SetValue(options, value);
        var ex = Assert.Throws<ArgumentException>(() => HarModel.Load(Fixture.Probs, options));
        Assert.Contains(property, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_ValidModel_IsReadyWithItsCardUntilDisposed()
    {
        var model = HarModel.Load(Fixture.Probs, Fixture.Options());
        Assert.True(model.IsReady);
        Assert.Equal("1.0.0", model.Version);
        Assert.Equal(1200, model.WindowValues);
        Assert.True(model.MemoryBytes > new FileInfo(Fixture.Probs).Length);

        model.Dispose();

        Assert.False(model.IsReady);
        Assert.Throws<ObjectDisposedException>(() => model.Predict(new float[1200]));
    }

    [Fact]
    public void Load_SeveralVersionsOnTheGlobalThreadPool_PredictSideBySide()
    {
        using var a = HarModel.Load(Fixture.Probs, Fixture.Options(o => o.UseGlobalThreadPool = true));
        using var b = HarModel.Load(Fixture.Logits, Fixture.Options(o => o.UseGlobalThreadPool = true));
        var window = Fixture.Frames(200);

        var pa = a.Predict(window);
        var pb = b.Predict(window);

        Assert.Equal("1.0.0", pa.ModelVersion);
        Assert.Equal("1.1.0", pb.ModelVersion);
        Assert.NotEqual(pa.Probabilities.ToArray(), pb.Probabilities.ToArray());
    }
}
