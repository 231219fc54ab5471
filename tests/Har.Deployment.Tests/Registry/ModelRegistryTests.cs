using Har.Audit;
using Har.Deployment.Tests.Support;

namespace Har.Deployment.Tests.Registry;

public sealed class ModelRegistryTests : IDisposable
{
    private readonly TestRegistry _env = new();

    public void Dispose() => _env.Dispose();

    [Fact]
    public void Register_ReferenceLayout_FilesRecordAndCurrentPointer()
    {
        var root = _env.Registry.Root;
        foreach (var v in new[] { "v1.0.0", "v1.1.0" })
        {
            Assert.True(File.Exists(Path.Combine(root, v, "model.onnx")));
            Assert.True(File.Exists(Path.Combine(root, v, "config.json")));
            Assert.True(File.Exists(Path.Combine(root, v, "deployment_record.json")));
        }

        Assert.Equal("v1.0.0", File.ReadAllText(Path.Combine(root, "current")).Trim());
        Assert.Equal("1.0.0", _env.Registry.CurrentVersion);
        var record = (DeploymentRecord)AuditRecord.Parse(AuditRecordKind.Deployment, File.ReadAllBytes(Path.Combine(root, "v1.1.0", "deployment_record.json")));
        Assert.Equal(AuditHash.Sha256OfFile(TestRegistry.CandidateFile), record.Model.Sha256);
        Assert.Equal("1.1.0", record.Model.Version);
        Assert.Equal("tester", record.Deployer.User);
        Assert.Equal(0.70, record.Config.ConfidenceThreshold);
        Assert.Equal(2, _env.Audit.Records.OfType<DeploymentRecord>().Count());
        Assert.Equal(["1.0.0", "1.1.0"], _env.Registry.List().Select(m => m.Version));
    }

    [Fact]
    public void Register_SameVersionTwice_RefusedVersionsAreImmutable()
    {
        var ex = Assert.Throws<ModelVersionConflictException>(() => _env.Registry.Register(TestRegistry.CandidateFile));
        Assert.Contains("immutable", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Verify_UntouchedVersion_Valid()
    {
        var v = _env.Registry.Verify("v1.1.0");
        Assert.True(v.IsValid, string.Join(" ", v.Problems));
        Assert.Equal(v.ExpectedSha256, v.ActualSha256);
    }

    [Fact]
    public void Verify_ModelFileModified_InvalidAndRefusalAudited()
    {
        var path = _env.Registry.Get("1.1.0").ModelPath;
        var bytes = File.ReadAllBytes(path);
        bytes[bytes.Length / 2] ^= 0x40;
        File.WriteAllBytes(path, bytes);

        var v = _env.Registry.Verify("1.1.0");
        Assert.False(v.IsValid);
        Assert.Contains(v.Problems, p => p.Contains("modified after registration", StringComparison.Ordinal));
        Assert.NotEqual(v.ExpectedSha256, v.ActualSha256);
        Assert.Throws<ModelIntegrityException>(() => _env.Registry.ReadVerified("1.1.0", "serve"));
        Assert.Throws<ModelIntegrityException>(() => _env.Registry.SetCurrent("1.1.0"));
        Assert.Equal("1.0.0", _env.Registry.CurrentVersion);
        Assert.True(_env.Audit.OfType("registry.refused").Count() >= 3);
    }

    [Fact]
    public void Verify_ModelReplacedBySymlink_Refused()
    {
        var dir = _env.Registry.Get("1.1.0").Directory;
        var model = Path.Combine(dir, "model.onnx");
        var outside = Path.Combine(_env.Root, "outside.onnx");
        File.Copy(model, outside);
        File.Delete(model);
        File.CreateSymbolicLink(model, outside);
        var v = _env.Registry.Verify("1.1.0");
        Assert.False(v.IsValid);
        Assert.Contains(v.Problems, p => p.Contains("link", StringComparison.Ordinal));
        Assert.Throws<ModelIntegrityException>(() => _env.Registry.ReadVerified("1.1.0", "serve"));
    }

    [Fact]
    public void Verify_ModelWhoseWeightsLieInAnotherFile_InvalidAndNotLoaded()
    {
        // A registry without an audit log vouches for a version by its deployment record alone. Rewritten to the new hash,
        // this is what a version registered with external data (by another tool, or before registration refused it) looks
        // like: its hash covers model.onnx, not the weights beside it, which anyone who can write the folder may change.
        var model = _env.Registry.Get("1.1.0");
        var external = Har.Testing.OnnxModelEditor.WithExternalInitializer(File.ReadAllBytes(model.ModelPath), "weights.bin", out var data, out var tensor);
        File.WriteAllBytes(model.ModelPath, external);
        File.WriteAllBytes(Path.Combine(Path.GetDirectoryName(model.ModelPath)!, "weights.bin"), data);
        var record = File.ReadAllText(model.DeploymentRecordPath);
        File.WriteAllText(model.DeploymentRecordPath, record.Replace(model.Sha256, AuditHash.Sha256OfFile(model.ModelPath), StringComparison.Ordinal));

        var verification = _env.Registry.Verify("1.1.0");

        Assert.False(verification.IsValid);
        var problem = Assert.Single(verification.Problems);
        Assert.Contains($"tensor '{tensor}' (graph › initializer) keeps its data in 'weights.bin'", problem, StringComparison.Ordinal);
        Assert.Contains("register the model again", problem, StringComparison.Ordinal);
        Assert.Throws<ModelIntegrityException>(() => _env.Registry.ReadVerified("1.1.0", "serve"));
    }

    [Fact]
    public void Verify_DeploymentRecordEdited_Invalid()
    {
        var recordPath = _env.Registry.Get("1.1.0").DeploymentRecordPath;
        var text = File.ReadAllText(recordPath);
        File.WriteAllText(recordPath, text.Replace(_env.Registry.Get("1.1.0").Sha256, new string('0', 64), StringComparison.Ordinal));
        Assert.False(_env.Registry.Verify("1.1.0").IsValid);
    }

    [Theory]
    [InlineData("../v1.0.0")]
    [InlineData("..")]
    [InlineData("1.0.0/../../etc")]
    [InlineData("/etc/passwd")]
    [InlineData("v1.0.0\\..\\..")]
    [InlineData("1.0")]
    [InlineData("1.0.0-../x")]
    [InlineData("C:1.0.0")]
    [InlineData("v1.0.0\0")]
    [InlineData("")]
    public void Get_PathTraversalOrMalformedVersion_Refused(string version)
    {
        var ex = Assert.Throws<ArgumentException>(() => _env.Registry.Get(version));
        Assert.Contains("semantic version", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => _env.Registry.Verify(version));
        Assert.Throws<ArgumentException>(() => _env.Registry.SetCurrent(version));
    }

    [Fact]
    public void Get_UnknownVersion_KeyNotFoundNamingRegisteredOnes()
    {
        var ex = Assert.Throws<KeyNotFoundException>(() => _env.Registry.Get("9.9.9"));
        Assert.Contains("1.0.0, 1.1.0", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SetCurrent_Valid_PointerReplacedAtomicallyWithNoTempLeft()
    {
        _env.Registry.SetCurrent("v1.1.0");
        Assert.Equal("1.1.0", _env.Registry.CurrentVersion);
        Assert.Empty(Directory.GetFiles(_env.Registry.Root, "*.tmp", SearchOption.AllDirectories));
        Assert.Empty(Directory.GetDirectories(_env.Registry.Root, ".staging-*"));
    }

    [Fact]
    public void Register_FileWithoutValidCard_RefusedAndNothingPublished()
    {
        var bad = Path.Combine(_env.Root, "not-a-model.onnx");
        File.WriteAllBytes(bad, [1, 2, 3, 4]);
        Assert.ThrowsAny<Exception>(() => _env.Registry.Register(bad));
        Assert.Equal(2, _env.Registry.List().Count);
    }
}
