using Prometheus;

namespace Har.Audit.Tests.Checkpoints;

/// <summary>Null and invalid arguments of the public methods: ArgumentNullException/ArgumentException naming the parameter.</summary>
public sealed class AuditSigningKeyTests
{
    [Fact]
    public void Generate_Null_IsArgumentNullException()
    {
        // Was FormatException "Key name '' is not valid …".
        Assert.Throws<ArgumentNullException>("name", () => AuditSigningKey.Generate(null!));
    }

    [Theory]
    [InlineData("")]
    [InlineData("a+b")]
    [InlineData("two words")]
    public void Generate_InvalidName_IsArgumentExceptionSayingWhatANameIs(string name)
    {
        var ex = Assert.Throws<ArgumentException>(nameof(name), () => AuditSigningKey.Generate(name));
        Assert.Contains("expected a non-empty name without '+'", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("a\nb", "Key name 'a\\u000ab' is not valid")]
    [InlineData("origin\r\u001b[31m", "Key name 'origin\\u000d\\u001b[31m' is not valid")]
    public void Generate_NameWithControlCharacters_MessageShowsThemEscapedOnOneLine(string name, string start)
    {
        // `har audit keygen --name $'a\nb'` printed its error on two lines (and a terminal escape as it was).
        var ex = Assert.Throws<ArgumentException>(nameof(name), () => AuditSigningKey.Generate(name));
        Assert.StartsWith(start, ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(ex.Message, c => char.IsControl(c));
    }

    [Fact]
    public async Task PublicMethods_NullArguments_AreArgumentExceptionsNamingTheParameter()
    {
        Assert.Throws<ArgumentNullException>("path", () => AuditSigningKey.Load(null!));
        Assert.Throws<ArgumentNullException>("verifierKey", () => AuditVerifierKey.Parse(null!));
        Assert.Throws<ArgumentNullException>("noteText", () => SignedCheckpoint.Parse(null!));
        Assert.Throws<ArgumentNullException>("directory", () => AuditLog.Verify(null!, null));
        Assert.Throws<ArgumentNullException>("directory", () => AuditLog.OpenReadOnly(null!));
        Assert.Throws<ArgumentNullException>("options", () => AuditLog.Open((AuditLogOptions)null!));
        Assert.Throws<ArgumentNullException>("services", () => new AuditLogHealthCheck(null!));
        Assert.Throws<ArgumentNullException>("path", () => AuditHash.Sha256OfFile(null!));

        using var dir = new TempDir();
        using var log = AuditLog.Open(new AuditLogOptions { Directory = dir.Path, MetricsRegistry = new CollectorRegistry() });
        Assert.Throws<ArgumentNullException>("directory", () => log.ExportTo(null!));
        Assert.Throws<ArgumentNullException>("query", () => log.Query(null!));
        await Assert.ThrowsAsync<ArgumentNullException>("record", () => log.AppendAsync(null!, TestContext.Current.CancellationToken));
        await Assert.ThrowsAsync<ArgumentNullException>("record", () => log.AppendOnceAsync(null!, TestContext.Current.CancellationToken));
    }
}
