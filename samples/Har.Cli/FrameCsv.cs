using System.Globalization;
using System.IO.Compression;
using System.Text;

namespace Har.Cli;

/// <summary>
/// Reads a recording as CSV, as spreadsheets and loggers write it: gzip-compressed or not (told from the file's first
/// bytes, not its name), comma, semicolon or tab separated (told from the header), fields optionally quoted (RFC 4180:
/// a quoted field may hold the separator and doubled quotes), a UTF-8 byte order mark, and where the separator is not a
/// comma a decimal comma in numbers ("0,981" as written by a German or French spreadsheet). Columns are found by name,
/// ignoring case. Every error names the file, the line and the column. The file may be a pipe (<c>--input &lt;(zcat x.gz)</c>,
/// <c>/dev/stdin</c>): it is read once, from start to end, and a line longer than <see cref="MaxLineLength"/> characters
/// (a binary file, <c>/dev/zero</c>) is refused there instead of being read into memory until it runs out.
/// </summary>
internal sealed class FrameCsv : IDisposable
{
    /// <summary>The longest line read, in characters: a row of sensor values is a few hundred at most.</summary>
    internal const int MaxLineLength = 64 * 1024;

    private static readonly char[] Separators = [',', ';', '\t'];
    private readonly LineReader _reader;
    private readonly CountingStream? _gzip;
    private bool _trailerChecked;
    private readonly List<string> _fields = [];
    private readonly StringBuilder _field = new();

    private FrameCsv(string path, LineReader reader, CountingStream? gzip, string headerLine)
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
    /// <exception cref="InvalidDataException">The file is empty, or a folder.</exception>
    /// <exception cref="LineTooLongException">The header is longer than <see cref="MaxLineLength"/>.</exception>
    public static FrameCsv Open(string path, string expected)
    {
        if (Directory.Exists(path))
        {
            throw new InvalidDataException($"Input '{path}' is a folder; expected a CSV file naming {expected}.");
        }

        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Input '{path}' does not exist.", path);
        }

        var file = File.OpenRead(path);
        try
        {
            // The first two bytes tell gzip from text; a pipe cannot seek back to them, so they are read again from here.
            var magic = new byte[2];
            var read = file.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false);
            Stream raw = new PrefixedStream(magic.AsMemory(0, read), file);
            var gzip = read == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
            var compressed = gzip ? new TailStream(raw) : null;
            var counted = compressed is null ? null : new CountingStream(new GZipStream(compressed, CompressionMode.Decompress), compressed);
            var reader = new LineReader(new StreamReader((Stream?)counted ?? raw, Encoding.UTF8, detectEncodingFromByteOrderMarks: true), path, "a CSV file of sensor frames, one short line per frame");
            string? header;
            try
            {
                header = reader.ReadLine(1);
            }
            catch (InvalidDataException ex) when (gzip)
            {
                reader.Dispose();
                throw new InvalidDataException($"'{path}' starts like a gzip file but does not decompress ({ex.Message}); expected a CSV file, gzip-compressed or not.", ex);
            }
            catch
            {
                reader.Dispose();
                throw;
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

    /// <summary>
    /// The lines of a text file (or a pipe), each at most <see cref="MaxLineLength"/> characters, without line ends; a
    /// folder or a missing file is refused naming <paramref name="expected"/>.
    /// </summary>
    /// <returns>The line number (from 1) and the line.</returns>
    public static IEnumerable<(int Number, string Line)> ReadLines(string path, string expected)
    {
        if (Directory.Exists(path))
        {
            throw new InvalidDataException($"'{path}' is a folder; expected {expected}.");
        }

        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"'{path}' does not exist; expected {expected}.", path);
        }

        return Lines(path, expected);

        static IEnumerable<(int, string)> Lines(string path, string expected)
        {
            using var reader = new LineReader(new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true), path, expected);
            var number = 0;
            while (reader.ReadLine(++number) is { } line)
            {
                yield return (number, line);
            }
        }
    }

    /// <summary>Text from the file as an error message shows it: on one line, without control characters, at most 80 characters.</summary>
    internal static string Printable(string text) => Har.Deployment.ModelVersionName.Printable(text);

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
                line = _reader.ReadLine(LineNumber + 1);
                last = line is not null && _gzip is not null && _reader.AtEnd;
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
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"'{Path}' line {LineNumber} has {_fields.Count} fields; expected {Header.Count} as in the header '{Printable(HeaderText)}'."));
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

        throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"'{Path}' line {LineNumber} column '{Printable(Header[column])}' is '{Printable(text)}'; expected a number{(Separator == ',' ? " (a decimal point, not a comma)" : string.Empty)}."));
    }

    /// <summary>The whole number in column <paramref name="column"/> of the current row.</summary>
    /// <exception cref="InvalidDataException">The field is not a whole number.</exception>
    public long Integer(int column, string expected) =>
        long.TryParse(_fields[column], NumberStyles.Integer, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"'{Path}' line {LineNumber} column '{Printable(Header[column])}' is '{Printable(_fields[column])}'; expected {expected}."));

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
        var recorded = _gzip.Compressed.Trailer();
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

    /// <summary>A line longer than <see cref="MaxLineLength"/>: not a CSV file of frames (an <see cref="IOException"/>, as <see cref="InvalidDataException"/> is sealed).</summary>
    internal sealed class LineTooLongException(string message) : IOException(message);

    /// <summary>
    /// Reads lines as <see cref="StreamReader.ReadLine"/> does (<c>\n</c>, <c>\r\n</c> or <c>\r</c> ends one), but refuses a
    /// line longer than <see cref="MaxLineLength"/>, and tells the end of the input exactly, also of a pipe.
    /// </summary>
    private sealed class LineReader(StreamReader reader, string path, string expected) : IDisposable
    {
        private readonly char[] _buffer = new char[16 * 1024];
        private readonly StringBuilder _line = new();
        private int _position;
        private int _length;
        private bool _end;

        /// <summary>Gets a value indicating whether every line has been read (reads ahead, waiting for a pipe's writer).</summary>
        public bool AtEnd => !Fill();

        /// <summary>The next line without its line end, or <see langword="null"/> at the end of the input.</summary>
        /// <param name="lineNumber">The line's number, for the error.</param>
        public string? ReadLine(int lineNumber)
        {
            if (!Fill())
            {
                return null;
            }

            _line.Clear();
            while (true)
            {
                var chars = _buffer.AsSpan(_position, _length - _position);
                var end = chars.IndexOfAny('\r', '\n');
                if (end < 0)
                {
                    Append(chars, lineNumber);
                    _position = _length;
                    if (!Fill())
                    {
                        return _line.ToString();
                    }

                    continue;
                }

                Append(chars[..end], lineNumber);
                _position += end + 1;
                if (chars[end] == '\r' && Fill() && _buffer[_position] == '\n')
                {
                    _position++;
                }

                return _line.ToString();
            }
        }

        public void Dispose() => reader.Dispose();

        private void Append(ReadOnlySpan<char> chars, int lineNumber)
        {
            if (_line.Length + chars.Length > MaxLineLength)
            {
                throw new LineTooLongException(string.Create(CultureInfo.InvariantCulture, $"'{path}' line {lineNumber} is longer than {MaxLineLength:#,0} characters; expected {expected} (is it a binary file?)."));
            }

            _line.Append(chars);
        }

        private bool Fill()
        {
            if (_position < _length)
            {
                return true;
            }

            if (_end)
            {
                return false;
            }

            _position = 0;
            _length = reader.Read(_buffer);
            _end = _length == 0;
            return !_end;
        }
    }

    /// <summary>Reads <paramref name="prefix"/> (bytes already read from <paramref name="inner"/>), then the rest of <paramref name="inner"/>.</summary>
    private sealed class PrefixedStream(ReadOnlyMemory<byte> prefix, Stream inner) : ReadOnlyStream
    {
        public override int Read(Span<byte> buffer)
        {
            if (prefix.IsEmpty)
            {
                return inner.Read(buffer);
            }

            var n = Math.Min(prefix.Length, buffer.Length);
            prefix.Span[..n].CopyTo(buffer);
            prefix = prefix[n..];
            return n;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    /// <summary>The compressed bytes: counts them and keeps the last four, a gzip file's trailer.</summary>
    private sealed class TailStream(Stream inner) : ReadOnlyStream
    {
        private readonly byte[] _tail = new byte[4];
        private long _count;

        public override int Read(Span<byte> buffer)
        {
            var n = inner.Read(buffer);
            var skipped = Math.Max(0, n - 4);
            _count += skipped;
            for (var i = skipped; i < n; i++)
            {
                _tail[(int)(_count++ % 4)] = buffer[i];
            }

            return n;
        }

        /// <summary>
        /// Reads what the decompressor left (a gzip file's trailer may be past where it stopped) and returns the size the
        /// trailer records, or <see langword="null"/> when the file is shorter than a gzip header and trailer (18 bytes).
        /// </summary>
        public uint? Trailer()
        {
            var rest = new byte[4096];
            while (Read(rest) > 0)
            {
            }

            if (_count < 18)
            {
                return null;
            }

            Span<byte> trailer = stackalloc byte[4];
            for (var i = 0; i < 4; i++)
            {
                trailer[i] = _tail[(int)((_count + i) % 4)];
            }

            return System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(trailer);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    /// <summary>Counts the bytes read through it (the decompressed bytes).</summary>
    private sealed class CountingStream(Stream inner, TailStream compressed) : ReadOnlyStream
    {
        public long Count { get; private set; }

        /// <summary>Gets the compressed stream under the decompressor.</summary>
        public TailStream Compressed => compressed;

        public override int Read(Span<byte> buffer)
        {
            var n = inner.Read(buffer);
            Count += n;
            return n;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    /// <summary>A forward-only stream read once.</summary>
    private abstract class ReadOnlyStream : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public abstract override int Read(Span<byte> buffer);

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
