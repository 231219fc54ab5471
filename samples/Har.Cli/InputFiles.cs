using System.Globalization;
using System.Text;

namespace Har.Cli;

/// <summary>
/// Small input files the CLI reads whole (a record to append, a key, a proof bundle). A folder or a missing file is
/// refused saying what was expected, and so is a file longer than the bound: a device such as <c>/dev/zero</c> never ends,
/// and was read until the process ran out of memory (a stack trace after minutes, found from outside).
/// </summary>
internal static class InputFiles
{
    /// <summary>The bound for a key file (a verifier key or a signing key is one line of under 200 characters).</summary>
    public const int MaxKeyBytes = 64 * 1024;

    /// <summary>The bound for a JSON document (a record, a proof bundle).</summary>
    public const int MaxDocumentBytes = 16 << 20;

    /// <summary>The bytes of <paramref name="path"/>, at most <paramref name="maxBytes"/>.</summary>
    /// <param name="path">The file.</param>
    /// <param name="expected">What the file should be, for the errors ("a JSON file holding one audit record").</param>
    /// <param name="maxBytes">The most bytes read.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">It is a folder, or longer than <paramref name="maxBytes"/>.</exception>
    public static byte[] ReadAllBytes(string path, string expected, int maxBytes)
    {
        if (Directory.Exists(path))
        {
            throw new InvalidDataException($"'{path}' is a folder; expected {expected}.");
        }

        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"'{path}' does not exist; expected {expected}.", path);
        }

        using var file = File.OpenRead(path);
        using var content = new MemoryStream();
        var chunk = new byte[64 * 1024];
        int read;
        while ((read = file.Read(chunk)) > 0)
        {
            if (content.Length + read > maxBytes)
            {
                throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"'{path}' is longer than {maxBytes:#,0} bytes; expected {expected}."));
            }

            content.Write(chunk, 0, read);
        }

        return content.ToArray();
    }

    /// <summary>The text of <paramref name="path"/> (UTF-8, a byte order mark skipped), at most <paramref name="maxBytes"/> bytes.</summary>
    /// <inheritdoc cref="ReadAllBytes" path="/param"/>
    /// <inheritdoc cref="ReadAllBytes" path="/exception"/>
    public static string ReadAllText(string path, string expected, int maxBytes)
    {
        using var reader = new StreamReader(new MemoryStream(ReadAllBytes(path, expected, maxBytes)), Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        return reader.ReadToEnd();
    }
}
