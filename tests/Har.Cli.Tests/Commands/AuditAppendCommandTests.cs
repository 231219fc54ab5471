using System.Text;
using System.Text.Json;

namespace Har.Cli.Tests.Commands;

/// <summary><c>har audit append --event</c> with files as editors write them.</summary>
[Collection(ConsoleTests.Name)]
public sealed class AuditAppendCommandTests : IDisposable
{
    private const string Event = """{"event_type":"ops.note","entity_type":"service","entity_id":"svc-1","actor":"alice","timestamp":"2026-12-06T10:00:00Z","severity":"info","action_details":{"note":"restarted"}}""";

    private readonly string _root = Directory.CreateTempSubdirectory("har-cli-append-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task EventFileWithAByteOrderMark_AppendedAsTheSameRecordAsWithout()
    {
        // Found by fuzzing the CLI: a file saved by Notepad ("UTF-8 with BOM") was exit code 2, "$: not valid JSON ('0xEF'
        // is an invalid start of a value)".
        var plain = Path.Combine(_root, "plain.json");
        var marked = Path.Combine(_root, "marked.json");
        await File.WriteAllTextAsync(plain, Event, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), TestContext.Current.CancellationToken);
        await File.WriteAllTextAsync(marked, Event, new UTF8Encoding(encoderShouldEmitUTF8Identifier: true), TestContext.Current.CancellationToken);
        Assert.Equal(0xEF, File.ReadAllBytes(marked)[0]);

        var leaves = new List<string>();
        foreach (var file in new[] { plain, marked })
        {
            var log = Path.Combine(_root, Path.GetFileNameWithoutExtension(file));
            var (code, stdout, stderr) = await ConsoleCapture.RunAsync("audit", "append", "--log", log, "--event", file, "--json");
            Assert.True(code == 0, stderr);
            leaves.Add(JsonDocument.Parse(stdout).RootElement.GetProperty("leaf_hash").GetString()!);
        }

        // The same canonical record, hashed the same (entry 0 of a new log: the same chain link too).
        Assert.Equal(leaves[0], leaves[1]);
    }

    [Fact]
    public async Task EventPathThatIsAFolderOrEndless_ExitCode2SayingWhatWasExpected()
    {
        var log = Path.Combine(_root, "log");

        // A folder was "Access to the path '…' is denied."
        var (code, _, stderr) = await ConsoleCapture.RunAsync("audit", "append", "--log", log, "--event", _root);
        Assert.Equal(2, code);
        Assert.Equal($"har: '{_root}' is a folder; expected --event: a JSON file holding one record.", stderr.TrimEnd());

        // /dev/zero was read until the memory ran out: "Unhandled exception: System.OutOfMemoryException" and a stack trace.
        Assert.SkipUnless(File.Exists("/dev/zero"), "No /dev/zero on this system.");
        (code, _, stderr) = await ConsoleCapture.RunAsync("audit", "append", "--log", log, "--event", "/dev/zero");
        Assert.Equal(2, code);
        Assert.Equal("har: '/dev/zero' is longer than 16,777,216 bytes; expected --event: a JSON file holding one record.", stderr.TrimEnd());
        Assert.False(Directory.Exists(log));
    }
}
