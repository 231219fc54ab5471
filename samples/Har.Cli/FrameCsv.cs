using System.Globalization;
using System.IO.Compression;
using System.Text;

namespace Har.Cli;

/// <summary>
/// Reads a recording as CSV, as spreadsheets and loggers write it: gzip-compressed or not (told from the file's first
/// bytes, not its name), comma, semicolon or tab separated (told from the header), fields optionally quoted (RFC 4180:
/// a quoted field may hold the separator and doubled quotes), a UTF-8 byte order mark, and where the separator is not a
/// comma a decimal comma in numbers ("0,981" as written by a German or French spreadsheet). Columns are found by name,
/// ignoring case. Every error names the file, the line and the column.
/// </summary>
internal sealed class FrameCsv : IDisposable
{
    private static readonly char[] Separators = [',', ';', '\t'];
    private readonly StreamReader _reader;
    private readonly CountingStream? _gzip;
    private bool _trailerChecked;
    private readonly List<string> _fields = [];
    private readonly StringBuilder _field = new();

    private FrameCsv(string path, StreamReader reader, CountingStream? gzip, string headerLine)
    {
        Path = path;
        _reader = reader;
        _gzip = gzip;
        Separator = Separators.OrderByDescending(s => CountOutsideQuotes(headerLine, s)).First();
        Split(headerLine, 1);
        Header = [.. _fields];
        HeaderText = headerLine;
        LineNumber = 1;
    }

    /// <summary>Gets the file read.</summary>
    public string Path { get; }

    /// <summary>Gets the field separator found in the header.</summary>
    public char Separator { get; }

    /// <summary>Gets the column names (trimmed, unquoted).</summary>
    public IReadOnlyList<string> Header { get; }

    /// <summary>Gets the header line as written.</summary>
    public string HeaderText { get; }

    /// <summary>Gets the line number of the row <see cref="Next"/> returned last (the header is line 1).</summary>
    public int LineNumber { get; private set; }

    /// <summary>Gets the fields of the row <see cref="Next"/> returned last.</summary>
    public IReadOnlyList<string> Fields => _fields;

    /// <summary>Opens <paramref name="path"/> and reads its header.</summary>
    /// <param name="path">The file.</param>
    /// <param name="expected">What the header should name, for the error on an empty file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is empty.</exception>
    public static FrameCsv Open(string path, string expected)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Input '{path}' does not exist.", path);
        }

        var file = File.OpenRead(path);
        try
        {
            Span<byte> magic = stackalloc byte[2];
            var gzip = file.Read(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
            file.Position = 0;
            var counted = gzip ? new CountingStream(new GZipStream(file, CompressionMode.Decompress)) : null;
            var reader = new StreamReader((Stream?)counted ?? file, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
            string? header;
            try
            {
                header = reader.ReadLine();
            }
            catch (InvalidDataException ex)
            {
                reader.Dispose();
                throw new InvalidDataException($"'{path}' starts like a gzip file but does not decompress ({ex.Message}); expected a CSV file, gzip-compressed or not.", ex);
            }

            if (string.IsNullOrWhiteSpace(header))
            {
                reader.Dispose();
                throw new InvalidDataException($"'{path}' is empty; expected a CSV header naming {expected}.");
            }

            return new FrameCsv(path, reader, counted, header);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>The recording's name: the file name without its extension, and without <c>.gz</c> before that (<c>walk.csv.gz</c> is <c>walk</c>).</summary>
    public static string RecordingName(string path)
    {
        var name = System.IO.Path.GetFileName(path);
        if (name.EndsWith(".gz", StringComparison.OrdinalIgnoreCase))
        {
            name = name[..^3];
        }

        return System.IO.Path.GetFileNameWithoutExtension(name);
    }

    /// <summary>The index of the column named <paramref name="name"/> (ignoring case), or -1.</summary>
    public int Column(string name)
    {
        for (var i = 0; i < Header.Count; i++)
        {
            if (string.Equals(Header[i], name, StringComparison.OrdinalIgnoreCase))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Reads the next row that is not blank into <see cref="Fields"/>.</summary>
    /// <returns><see langword="false"/> at the end of the file.</returns>
    /// <exception cref="InvalidDataException">The row has another number of fields than the header, or a quote is not closed.</exception>
    public bool Next()
    {
        string? line;
        var last = false;
        do
        {
            try
            {
                line = _reader.ReadLine();
                last = line is not null && _gzip is not null && _reader.Peek() < 0;
            }
            catch (InvalidDataException ex)
            {
                throw new InvalidDataException($"'{Path}' is a damaged gzip file after line {LineNumber} ({ex.Message}).", ex);
            }

            if (last)
            {
                // A cut file's last line is where it was cut: its trailer is checked before the line is used.
                CheckGzipTrailer();
            }

            if (line is null)
            {
                CheckGzipTrailer();
                return false;
            }

            LineNumber++;
        }
        while (string.IsNullOrWhiteSpace(line));

        Split(line, LineNumber);
        if (_fields.Count != Header.Count)
        {
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"'{Path}' line {LineNumber} has {_fields.Count} fields; expected {Header.Count} as in the header '{HeaderText}'."));
        }

        return true;
    }

    /// <summary>The number in column <paramref name="column"/> of the current row.</summary>
    /// <exception cref="InvalidDataException">The field is not a number.</exception>
    public float Float(int column)
    {
        var text = _fields[column];
        if (float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
            || (Separator != ',' && !text.Contains('.', StringComparison.Ordinal) && float.TryParse(text.Replace(',', '.'), NumberStyles.Float, CultureInfo.InvariantCulture, out value)))
        {
            return value;
        }

        throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"'{Path}' line {LineNumber} column '{Header[column]}' is '{text}'; expected a number{(Separator == ',' ? " (a decimal point, not a comma)" : string.Empty)}."));
    }

    /// <summary>The whole number in column <paramref name="column"/> of the current row.</summary>
    /// <exception cref="InvalidDataException">The field is not a whole number.</exception>
    public long Integer(int column, string expected) =>
        long.TryParse(_fields[column], NumberStyles.Integer, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"'{Path}' line {LineNumber} column '{Header[column]}' is '{_fields[column]}'; expected {expected}."));

    public void Dispose() => _reader.Dispose();

    /// <summary>
    /// A gzip file cut short decompresses without an error up to where it was cut (GZipStream does not check that the
    /// trailer was reached), which would end the recording early or, cut inside a number, shorten that number. The
    /// trailer's last four bytes record the uncompressed size (mod 2³²): they must match what was read.
    /// </summary>
    private void CheckGzipTrailer()
    {
        if (_gzip is null || _trailerChecked)
        {
            return;
        }

        _trailerChecked = true;
        using var handle = File.OpenHandle(Path);
        var length = RandomAccess.GetLength(handle);
        Span<byte> trailer = stackalloc byte[4];
        var recorded = length >= 18 && RandomAccess.Read(handle, trailer, length - 4) == 4 ? System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(trailer) : (uint?)null;
        if (recorded != (uint)_gzip.Count)
        {
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"'{Path}' is a damaged gzip file after line {LineNumber}: it decompresses to {_gzip.Count} bytes, but its trailer records {recorded?.ToString(CultureInfo.InvariantCulture) ?? "nothing"} (cut short in a copy or a download?). Nothing was scored from a partial recording."));
        }
    }

    private static int CountOutsideQuotes(string line, char separator)
    {
        var count = 0;
        var quoted = false;
        foreach (var c in line)
        {
            if (c == '"')
            {
                quoted = !quoted;
            }
            else if (c == separator && !quoted)
            {
                count++;
            }
        }

        return count;
    }

    /// <summary>Splits one line into <see cref="_fields"/>: trimmed, a quoted field unquoted (doubled quotes inside are one).</summary>
    private void Split(string line, int lineNumber)
    {
        _fields.Clear();
        var i = 0;
        while (true)
        {
            while (i < line.Length && line[i] is ' ')
            {
                i++;
            }

            _field.Clear();
            if (i < line.Length && line[i] == '"')
            {
                i++;
                while (true)
                {
                    if (i >= line.Length)
                    {
                        throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"'{Path}' line {lineNumber} field {_fields.Count + 1} opens a quote it does not close; a quoted field ends with \" on the same line."));
                    }

                    if (line[i] == '"')
                    {
                        if (i + 1 < line.Length && line[i + 1] == '"')
                        {
                            _field.Append('"');
                            i += 2;
                            continue;
                        }

                        i++;
                        break;
                    }

                    _field.Append(line[i++]);
                }

                while (i < line.Length && line[i] != Separator)
                {
                    i++;
                }
            }
            else
            {
                var start = i;
                while (i < line.Length && line[i] != Separator)
                {
                    i++;
                }

                _field.Append(line.AsSpan(start, i - start).Trim());
            }

            _fields.Add(_field.ToString());
            if (i >= line.Length)
            {
                return;
            }

            i++; // the separator
        }
    }

    /// <summary>Counts the bytes read through it.</summary>
    private sealed class CountingStream(Stream inner) : Stream
    {
        public long Count { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => Count; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = inner.Read(buffer);
            Count += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
