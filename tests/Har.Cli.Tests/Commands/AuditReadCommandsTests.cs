using System.Globalization;
using System.Text.Json;
using Har.Audit;

namespace Har.Cli.Tests.Commands;

/// <summary>
/// <c>har audit show|query|prove|export</c> only read: found by fuzzing the CLI, they opened the log for writing, so on a
/// log with a torn tail they moved it to torn/ and rewrote the derived files and the seal, and while the service held the
/// log they failed. Now they open it read-only: nothing in the folder changes, one warning names where the log stops,
/// and a log the service holds is read.
/// </summary>
[Collection(ConsoleTests.Name)]
public sealed class AuditReadCommandsTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("har-cli-audit-").FullName;

    private string Log => Path.Combine(_root, "log");

    public void Dispose() => Directory.Delete(_root, recursive: true);

    public static TheoryData<string[]> ReadCommands() => new(
        ["show", "--index", "2"],
        ["query", "--entity-id", "e-1"],
        ["prove", "--index", "1"],
        ["prove", "--from", "2", "--size", "4"],
        ["prove", "--index", "1", "--bundle", "{out}"],
        ["export", "--out", "{out}"]);

    [Theory]
    [MemberData(nameof(ReadCommands))]
    public async Task ReadCommand_LogWithATornTail_ChangesNothingAndWarnsOnce(string[] command)
    {
        await CreateLog();
        var segment = Path.Combine(Log, "entries.log");
        var clean = new FileInfo(segment).Length;
        await File.AppendAllTextAsync(segment, "\u0001\u0002\u0000\u0000torn");
        var before = FolderSnapshot.Take(Log);

        var (code, stdout, stderr) = await Run(command);

        Assert.True(code == 0, stderr);
        Assert.NotEmpty(stdout);
        var warning = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith(string.Create(CultureInfo.InvariantCulture, $"har: warning: the audit log at '{Log}' is readable up to entry 5: at segment offset {clean} (8 bytes not read) "), warning, StringComparison.Ordinal);
        Assert.Contains($"Nothing was changed; this command read the entries before it. Run `har audit verify --log {Log}`", warning, StringComparison.Ordinal);
        Assert.Contains("`har audit repair`", warning, StringComparison.Ordinal);
        Assert.Equal(before, FolderSnapshot.Take(Log));
    }

    [Theory]
    [MemberData(nameof(ReadCommands))]
    public async Task ReadCommand_LogTheServiceHoldsOpenWithAGroupInFlight_SucceedsWithoutWarning(string[] command)
    {
        await CreateLog();
        using var owner = AuditLog.Open(new AuditLogOptions { Directory = Log, EnableMetrics = false }); // as the service does
        await owner.AppendAsync(Event(5));
        await File.AppendAllTextAsync(Path.Combine(Log, "entries.log"), "\u00c8\u0000\u0000\u0000half"); // a group being written

        var (code, stdout, stderr) = await Run(command);

        Assert.True(code == 0, stderr);
        Assert.Empty(stderr);
        Assert.NotEmpty(stdout);
    }

    [Fact]
    public async Task ExportAndProve_DamagedEntryBelowTheCheckpoint_ExportThePrefixWithoutItAndRefuseTheBundle()
    {
        await CreateLog();
        File.Delete(Path.Combine(Log, "state.json")); // no seal: entry 3 is re-scanned
        var rows = await File.ReadAllBytesAsync(Path.Combine(Log, "entries.idx"));
        var offset = BitConverter.ToInt64(rows, 3 * 40);
        var segment = await File.ReadAllBytesAsync(Path.Combine(Log, "entries.log"));
        segment[offset + 40] ^= 0x20;
        await File.WriteAllBytesAsync(Path.Combine(Log, "entries.log"), segment);
        var before = FolderSnapshot.Take(Log);

        var (code, stdout, stderr) = await Run(["export", "--out", "{out}"]);
        Assert.True(code == 0, stderr);
        Assert.Contains("exported 3 entries", stdout, StringComparison.Ordinal);
        Assert.Contains("without its checkpoint (it signs 5 entries", stdout, StringComparison.Ordinal);
        Assert.Contains("CRC-32C mismatch; 1 valid frame follows it", stderr, StringComparison.Ordinal);
        Assert.Contains("covers 5 entries, so entries 3..4 are missing or damaged", stderr, StringComparison.Ordinal);

        (code, stdout, stderr) = await Run(["prove", "--index", "1", "--bundle", "{out}.json"]);
        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.Contains("har: The latest signed checkpoint commits to 5 entries but only 3 are readable", stderr, StringComparison.Ordinal);
        Assert.Equal(before, FolderSnapshot.Take(Log));
    }

    private async Task<(int Code, string Out, string Error)> Run(string[] command)
    {
        var output = Path.Combine(_root, "out");
        return await ConsoleCapture.RunAsync(["audit", .. command.Select(a => a.Replace("{out}", output, StringComparison.Ordinal)), "--log", Log]);
    }

    /// <summary>Five entries and a checkpoint signed over them.</summary>
    private async Task CreateLog()
    {
        using var key = AuditSigningKey.Generate("k");
        using var log = AuditLog.Open(new AuditLogOptions { Directory = Log, EnableMetrics = false });
        for (var i = 0; i < 5; i++)
        {
            await log.AppendAsync(Event(i));
        }

        log.CreateCheckpoint(key);
    }

    private static AuditEvent Event(int i) => new()
    {
        EventType = "test.event",
        EntityType = "model",
        EntityId = $"e-{i % 2}",
        Severity = AuditSeverity.Info,
        ActionDetails = JsonSerializer.SerializeToElement(new { i }),
        Actor = "tester",
        Timestamp = new DateTimeOffset(2026, 1, 15, 10, 30, i, TimeSpan.Zero),
    };

    [Fact]
    public async Task Verify_VerifierKeyPathThatIsAFolderOrEndless_ExitCode2SayingWhatWasExpected()
    {
        await CreateLog();

        // A folder was taken for the key itself: "Malformed verifier key '<folder>'".
        var (code, _, stderr) = await ConsoleCapture.RunAsync("audit", "verify", "--log", Log, "--vkey", _root);
        Assert.Equal(2, code);
        Assert.Equal($"har: '{_root}' is a folder; expected a verifier key file (name+keyid+base64).", stderr.TrimEnd());

        // /dev/zero was read until the memory ran out: an OutOfMemoryException and a stack trace.
        Assert.SkipUnless(File.Exists("/dev/zero"), "No /dev/zero on this system.");
        (code, _, stderr) = await ConsoleCapture.RunAsync("audit", "verify", "--log", Log, "--vkey", "/dev/zero");
        Assert.Equal(2, code);
        Assert.Equal("har: '/dev/zero' is longer than 65,536 bytes; expected a verifier key file (name+keyid+base64).", stderr.TrimEnd());
    }

    [Theory]
    [InlineData("0")]
    [InlineData("1001")]
    public async Task Query_PageSizeOutOfRange_ParseErrorNamingTheOption(string size)
    {
        // It was "har: query ('0') must be greater than or equal to '1'.", the library's argument check.
        await CreateLog();

        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("audit", "query", "--log", Log, "--page-size", size);

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.StartsWith($"har: --page-size is {size}; expected 1 to 1,000: ", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Export_OutIsAFile_ExitCode2NamingTheOption()
    {
        // It said "AuditLogOptions.Directory '…' is a file, not a folder", an option of the library no CLI user sets.
        await CreateLog();
        var file = Path.Combine(_root, "export.txt");
        await File.WriteAllTextAsync(file, "keep", TestContext.Current.CancellationToken);

        var (code, stdout, stderr) = await ConsoleCapture.RunAsync("audit", "export", "--log", Log, "--out", file);

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.Equal($"har: --out '{file}' is a file; expected a new or empty folder for the exported log.", stderr.TrimEnd());
        Assert.Equal("keep", await File.ReadAllTextAsync(file, TestContext.Current.CancellationToken));
    }
}
