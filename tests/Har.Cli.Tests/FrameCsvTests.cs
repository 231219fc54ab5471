using System.Diagnostics;
using System.IO.Compression;
using System.Text;

namespace Har.Cli.Tests;

/// <summary>
/// Recordings as spreadsheets and loggers write them. Found by fuzzing the CLI: a gzip-compressed recording, a
/// semicolon-separated export with decimal commas and a quoted header were each refused by `har drift check` and
/// `har predict` with "has no column(s) ax, ay, …" or "line 2 has 1 fields", although each holds the same frames.
/// </summary>
public sealed class FrameCsvTests : IDisposable
{
    private static readonly float[][] Rows = [[0.981f, -0.012f, 0.2f, 0.01f, -0.5f, 1e-3f], [1.5f, 2.25f, -3f, 0f, 4.75f, -0.125f]];

    private readonly string _dir = Directory.CreateTempSubdirectory("har-cli-csv-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string, string> Spellings => new()
    {
        { "plain", "ax,ay,az,gx,gy,gz\n0.981,-0.012,0.2,0.01,-0.5,0.001\n1.5,2.25,-3,0,4.75,-0.125\n" },
        { "spaces and CRLF", "ax, ay, az, gx, gy, gz\r\n 0.981 , -0.012, 0.2, 0.01, -0.5, 1e-3\r\n\r\n1.5,2.25,-3,0,4.75,-0.125\r\n" },
        { "upper-case header", "AX,AY,AZ,GX,GY,GZ\n0.981,-0.012,0.2,0.01,-0.5,0.001\n1.5,2.25,-3,0,4.75,-0.125\n" },
        { "quoted", "\"ax\",\"ay\",\"az\",\"gx\",\"gy\",\"gz\"\n\"0.981\",\"-0.012\",\"0.2\",\"0.01\",\"-0.5\",\"0.001\"\n1.5,2.25,-3,0,4.75,-0.125\n" },
        { "semicolons with decimal commas", "ax;ay;az;gx;gy;gz\n0,981;-0,012;0,2;0,01;-0,5;0,001\n1,5;2,25;-3;0;4,75;-0,125\n" },
        { "semicolons with decimal points", "ax;ay;az;gx;gy;gz\n0.981;-0.012;0.2;0.01;-0.5;0.001\n1.5;2.25;-3;0;4.75;-0.125\n" },
        { "tabs", "ax\tay\taz\tgx\tgy\tgz\n0.981\t-0.012\t0.2\t0.01\t-0.5\t0.001\n1.5\t2.25\t-3\t0\t4.75\t-0.125\n" },
        { "byte order mark", "\uFEFFax,ay,az,gx,gy,gz\n0.981,-0.012,0.2,0.01,-0.5,0.001\n1.5,2.25,-3,0,4.75,-0.125\n" },
        { "extra quoted column holding separators", "note,ax,ay,az,gx,gy,gz\n\"sitting, then \"\"standing\"\"\",0.981,-0.012,0.2,0.01,-0.5,0.001\nx,1.5,2.25,-3,0,4.75,-0.125\n" },
    };

    [Theory]
    [MemberData(nameof(Spellings))]
    public void Open_EverySpelling_ReadsTheSameFrames(string spelling, string text)
    {
        foreach (var gzip in new[] { false, true })
        {
            // Compressed or not is told from the bytes: the compressed copy is named .csv as well.
            var path = Write($"{spelling}-{gzip}.csv", text, gzip);
            using var csv = FrameCsv.Open(path, "the channels");
            var columns = new[] { "ax", "ay", "az", "gx", "gy", "gz" }.Select(csv.Column).ToArray();
            Assert.DoesNotContain(-1, columns);
            var rows = new List<float[]>();
            while (csv.Next())
            {
                rows.Add([.. columns.Select(csv.Float)]);
            }

            Assert.Equal(Rows, rows);
        }
    }

    [Fact]
    public void Next_QuotedFieldHoldingTheSeparator_IsOneField()
    {
        var path = Write("note.csv", "note,ax\n\"sitting, then \"\"standing\"\"\",1\n", gzip: false);
        using var csv = FrameCsv.Open(path, "ax");

        Assert.True(csv.Next());
        Assert.Equal(["sitting, then \"standing\"", "1"], csv.Fields);
    }

    [Theory]
    [InlineData("ax,ay\n0.1\n", "line 2 has 1 fields; expected 2 as in the header 'ax,ay'.")]
    [InlineData("ax,ay\n0.1,\"0.2\n", "line 2 field 2 opens a quote it does not close")]
    [InlineData("ax,ay\n0.1,0,2\n", "line 2 has 3 fields; expected 2")]
    [InlineData("ax,ay\n0.1,abc\n", "line 2 column 'ay' is 'abc'; expected a number (a decimal point, not a comma).")]
    [InlineData("ax;ay\n0,1;1.000,5\n", "line 2 column 'ay' is '1.000,5'; expected a number.")]
    public void Malformed_InvalidDataNamingTheLine(string text, string expected)
    {
        var path = Write("bad.csv", text, gzip: false);
        using var csv = FrameCsv.Open(path, "ax,ay");

        var error = Assert.Throws<InvalidDataException>(() =>
        {
            while (csv.Next())
            {
                _ = csv.Float(0);
                _ = csv.Float(1);
            }
        });
        Assert.StartsWith($"'{path}' ", error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_EmptyFile_InvalidDataSayingWhatTheHeaderShouldName()
    {
        var path = Write("empty.csv", string.Empty, gzip: false);

        var error = Assert.Throws<InvalidDataException>(() => FrameCsv.Open(path, "the channels ax,ay"));
        Assert.Equal($"'{path}' is empty; expected a CSV header naming the channels ax,ay.", error.Message);
    }

    [Fact]
    public void Open_GzipMagicButNotGzip_InvalidDataNamingTheFile()
    {
        var path = Path.Combine(_dir, "fake.csv.gz");
        File.WriteAllBytes(path, [0x1f, 0x8b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

        var error = Assert.Throws<InvalidDataException>(() => FrameCsv.Open(path, "the channels"));
        Assert.StartsWith($"'{path}' starts like a gzip file but does not decompress", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0.3)]
    [InlineData(0.5)]
    [InlineData(0.9)]
    [InlineData(-1)] // the last byte of the trailer missing
    [InlineData(-8)] // the whole trailer missing: the compressed data complete
    public void Next_GzipCutShort_InvalidDataNamingTheFile(double cut)
    {
        // GZipStream reads a cut file to where it was cut without an error: the recording ended early, and a number cut
        // in two ("4938.5" read as "49") was taken as it stood.
        var text = new StringBuilder("ax,ay\n");
        for (var i = 0; i < 20_000; i++)
        {
            text.Append(i).Append(',').Append(i * 0.5).Append('\n');
        }

        var bytes = File.ReadAllBytes(Write("whole.csv.gz", text.ToString(), gzip: true));
        var path = Path.Combine(_dir, "cut.csv.gz");
        File.WriteAllBytes(path, bytes[..(cut > 0 ? (int)(bytes.Length * cut) : bytes.Length + (int)cut)]);
        using var csv = FrameCsv.Open(path, "ax,ay");

        var error = Assert.Throws<InvalidDataException>(() =>
        {
            while (csv.Next())
            {
                _ = csv.Float(0);
                _ = csv.Float(1);
            }
        });
        Assert.StartsWith($"'{path}' is a damaged gzip file after line ", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_Folder_RefusedAsAFolder()
    {
        // It said "Input '<folder>' does not exist." of a folder that exists.
        var error = Assert.Throws<InvalidDataException>(() => FrameCsv.Open(_dir, "the columns ax"));
        Assert.Equal($"Input '{_dir}' is a folder; expected a CSV file naming the columns ax.", error.Message);
    }

    [Fact]
    public void Open_LineLongerThan64KiB_RefusedThereNamingTheLine()
    {
        // Found from outside: `har predict --input /dev/zero` read one endless line for 35 s and 8 GB of memory, then said
        // "minimumLength ('-2147483648') must be a non-negative value."; a binary file's first "line" was shown whole.
        var header = Write("long-header.csv", new string('x', 65_537), gzip: false);
        var error = Assert.ThrowsAny<IOException>(() => FrameCsv.Open(header, "ax"));
        Assert.Equal($"'{header}' line 1 is longer than 65,536 characters; expected a CSV file of sensor frames, one short line per frame (is it a binary file?).", error.Message);

        var row = Write("long-row.csv", "ax\n1\n" + new string('1', 65_537) + "\n2\n", gzip: false);
        using var csv = FrameCsv.Open(row, "ax");
        Assert.True(csv.Next());
        error = Assert.ThrowsAny<IOException>(() => csv.Next());
        Assert.StartsWith($"'{row}' line 3 is longer than 65,536 characters", error.Message, StringComparison.Ordinal);

        // The bound itself is a line.
        using var longest = FrameCsv.Open(Write("longest.csv", "ax\n" + new string('1', 65_536) + "\n", gzip: false), "ax");
        Assert.True(longest.Next());
    }

    [Fact]
    public void Open_DevZero_RefusedAtTheFirstLine()
    {
        Assert.SkipUnless(File.Exists("/dev/zero"), "No /dev/zero on this system.");
        var error = Assert.ThrowsAny<IOException>(() => FrameCsv.Open("/dev/zero", "ax"));
        Assert.StartsWith("'/dev/zero' line 1 is longer than 65,536 characters", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public async Task Open_NamedPipe_ReadsTheFramesAndChecksAGzipTrailer(bool gzip, bool cut)
    {
        // `har predict --input <(zcat walk.csv.gz)` and `--input /dev/stdin` read a pipe: it was "Unhandled exception:
        // System.NotSupportedException: Stream does not support seeking" with a stack trace, exit code 1.
        Assert.SkipWhen(OperatingSystem.IsWindows(), "Named pipes in the file system (mkfifo) are POSIX.");
        var text = new StringBuilder("ax,ay,az,gx,gy,gz\n");
        for (var i = 0; i < 5_000; i++)
        {
            text.Append("0.981,-0.012,0.2,0.01,-0.5,0.001\n");
        }

        var bytes = File.ReadAllBytes(Write("source.csv", text.ToString(), gzip));
        bytes = cut ? bytes[..^5] : bytes;
        var fifo = Path.Combine(_dir, "stream.csv");
        using (var mkfifo = Process.Start("mkfifo", [fifo]))
        {
            await mkfifo.WaitForExitAsync(TestContext.Current.CancellationToken);
            Assert.Equal(0, mkfifo.ExitCode);
        }

        var writer = Task.Run(async () =>
        {
            await using var pipe = new FileStream(fifo, FileMode.Open, FileAccess.Write);
            await pipe.WriteAsync(bytes);
        });
        var rows = 0;
        try
        {
            using var csv = FrameCsv.Open(fifo, "the channels");
            while (csv.Next())
            {
                Assert.Equal(0.981f, csv.Float(0));
                rows++;
            }

            Assert.False(cut, "a cut gzip stream was read to its end without an error");
            Assert.Equal(5_000, rows);
        }
        catch (InvalidDataException error) when (cut)
        {
            Assert.StartsWith($"'{fifo}' is a damaged gzip file after line ", error.Message, StringComparison.Ordinal);
        }

        await writer;
    }

    [Fact]
    public void Open_Missing_FileNotFound()
    {
        Assert.Throws<FileNotFoundException>(() => FrameCsv.Open(Path.Combine(_dir, "absent.csv"), "ax"));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_dir));
    }

    private string Write(string name, string text, bool gzip)
    {
        var path = Path.Combine(_dir, name);
        var bytes = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(text);
        if (gzip)
        {
            using var file = File.Create(path);
            using var zip = new GZipStream(file, CompressionLevel.Fastest);
            zip.Write(bytes);
        }
        else
        {
            File.WriteAllBytes(path, bytes);
        }

        return path;
    }
}
