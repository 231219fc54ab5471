using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace Har.Service.Endpoints;

/// <summary>
/// Parses prediction request bodies straight into a pooled float buffer: raw little-endian float32, or
/// JSON read token by token with <see cref="Utf8JsonReader"/> (no <c>float[][]</c>, no boxing). Every
/// client mistake becomes a <see cref="BodyError"/> with a status and a message, never an exception.
/// </summary>
internal static class RequestBodies
{
    /// <summary>Longest accepted stream id (characters).</summary>
    public const int MaxStreamIdLength = 256;

    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 8 };

    private static readonly BodyError InvalidText = new(
        400,
        "The body holds a string or member name that is not valid UTF-8 (invalid or overlong bytes, an encoded surrogate) or an escaped lone surrogate such as \\ud800; send JSON as valid UTF-8 text.",
        "Invalid text in JSON");

    /// <summary>
    /// The whole body in a pooled byte buffer: the one <see cref="Security.PredictionBodies"/> read before the request's
    /// slot, else read now (Kestrel enforces the size limit: 413).
    /// </summary>
    public static async ValueTask<PooledBytes> ReadAsync(HttpRequest request, CancellationToken ct)
    {
        if (request.HttpContext.Features.Get<Security.PrefetchedBody>() is { } prefetched)
        {
            return new PooledBytes(prefetched.Array, prefetched.Length, owned: false);
        }

        var initial = request.ContentLength is > 0 and < int.MaxValue - 1 ? (int)request.ContentLength.Value + 1 : 16 * 1024;
        var buffer = ArrayPool<byte>.Shared.Rent(initial);
        var length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    var grown = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, length).CopyTo(grown);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = grown;
                }

                var read = await request.Body.ReadAsync(buffer.AsMemory(length), ct);
                if (read == 0)
                {
                    return new PooledBytes(buffer, length);
                }

                length += read;
            }
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    /// <summary>Raw float32 (little-endian) into <paramref name="values"/>; the value count must be a positive multiple of <paramref name="unit"/>.</summary>
    public static BodyError? ParseFloat32(ReadOnlySpan<byte> body, int unit, string shape, ref PooledFloats values)
    {
        if (body.Length % sizeof(float) != 0)
        {
            return new(400, $"The body has {body.Length} bytes, not a whole number of float32 values (4 bytes each).");
        }

        var count = body.Length / sizeof(float);
        if (count == 0 || count % unit != 0)
        {
            return new(400, $"The body holds {count} float32 values; expected a positive multiple of {unit} ({shape}, little-endian).");
        }

        values.EnsureCapacity(count);
        var destination = values.Array.AsSpan(0, count);
        if (BitConverter.IsLittleEndian)
        {
            MemoryMarshal.Cast<byte, float>(body).CopyTo(destination);
        }
        else
        {
            for (var i = 0; i < count; i++)
            {
                destination[i] = BinaryPrimitives.ReadSingleLittleEndian(body.Slice(i * sizeof(float), sizeof(float)));
            }
        }

        values.Count = count;
        return null;
    }

    /// <summary>
    /// <c>{"stream_id": "…", "windows": [[…], …]}</c>: every window must hold exactly <paramref name="windowValues"/>
    /// finite numbers; at most <paramref name="maxWindows"/> windows (more is 413).
    /// </summary>
    public static BodyError? ParseWindowsJson(ReadOnlySpan<byte> json, int windowValues, int maxWindows, string shape, ref PooledFloats values, out string? streamId)
    {
        streamId = null;
        var reader = new Utf8JsonReader(json, ReaderOptions);
        try
        {
            if (StartObject(ref reader, "{\"stream_id\": \"…\", \"windows\": [[…], …]}") is { } notObject)
            {
                return notObject;
            }

            var sawWindows = false;
            var sawStreamId = false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var member = Member(ref reader, "stream_id"u8, "windows"u8);
                if (member == 1)
                {
                    // Names are matched ignoring case, so "STREAM_ID" after "stream_id" is the same member given twice:
                    // read as the last one, a gateway checking "stream_id" and this service would disagree on the stream.
                    if (sawStreamId)
                    {
                        return new(400, "'stream_id' appears twice (member names are matched ignoring case); expected it once.");
                    }

                    sawStreamId = true;
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.String)
                    {
                        streamId = reader.GetString();
                    }
                    else if (reader.TokenType != JsonTokenType.Null)
                    {
                        return new(400, $"'stream_id' is {Describe(reader.TokenType)}; expected a string.");
                    }
                }
                else if (member == 2)
                {
                    if (sawWindows)
                    {
                        return new(400, "'windows' appears twice (member names are matched ignoring case); expected it once.");
                    }

                    sawWindows = true;
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.StartArray)
                    {
                        return new(400, $"'windows' is {Describe(reader.TokenType)}; expected an array of windows, each an array of {windowValues} interleaved samples.");
                    }

                    var windows = 0;
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        if (windows == maxWindows)
                        {
                            return new(413, $"More than {maxWindows} windows in one request; at most {maxWindows} are accepted.");
                        }

                        if (reader.TokenType != JsonTokenType.StartArray)
                        {
                            return new(400, $"windows[{windows}] is {Describe(reader.TokenType)}; expected an array of {windowValues} numbers ({shape}).");
                        }

                        if (ReadNumbers(ref reader, ref values, windows * windowValues, windowValues, "windows", windows, out var n) is { } bad)
                        {
                            return bad;
                        }

                        if (n != windowValues)
                        {
                            return new(400, $"windows[{windows}] has {n} values; expected {windowValues} ({shape}).");
                        }

                        windows++;
                    }

                    if (windows == 0)
                    {
                        return new(400, "'windows' is empty; expected an array of windows, each an array of interleaved samples.");
                    }

                    values.Count = windows * windowValues;
                }
                else
                {
                    return UnknownMember(ref reader, "'stream_id' and 'windows'");
                }
            }

            // The end of the root object; anything after it makes Read throw (one JSON value per body).
            while (reader.Read())
            {
            }

            return sawWindows ? null : new(400, "'windows' is missing; expected an array of windows, each an array of interleaved samples.");
        }
        catch (JsonException ex)
        {
            return new(400, $"Malformed JSON: {ex.Message} Expected {{\"stream_id\": \"…\", \"windows\": [[…], …]}}.", "Malformed JSON");
        }
        catch (InvalidOperationException)
        {
            // Utf8JsonReader.GetString: a string or member name that is not valid UTF-8 (invalid or overlong bytes,
            // an encoded surrogate) or holds an escaped lone surrogate (\ud800).
            return InvalidText;
        }
    }

    /// <summary><c>{"samples": [ax, ay, az, gx, gy, gz, …]}</c>: finite numbers only.</summary>
    public static BodyError? ParseSamplesJson(ReadOnlySpan<byte> json, ref PooledFloats values)
    {
        var reader = new Utf8JsonReader(json, ReaderOptions);
        try
        {
            if (StartObject(ref reader, "{\"samples\": [ax, ay, az, gx, gy, gz, …]}") is { } notObject)
            {
                return notObject;
            }

            var saw = false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (Member(ref reader, "samples"u8, default) != 1)
                {
                    return UnknownMember(ref reader, "'samples'");
                }

                if (saw)
                {
                    return new(400, "'samples' appears twice; expected it once.");
                }

                saw = true;
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartArray)
                {
                    return new(400, $"'samples' is {Describe(reader.TokenType)}; expected interleaved frames [ax, ay, az, gx, gy, gz, …].");
                }

                if (ReadNumbers(ref reader, ref values, 0, int.MaxValue, "samples", -1, out var count) is { } bad)
                {
                    return bad;
                }

                values.Count = count;
            }

            while (reader.Read())
            {
            }

            return saw ? null : new(400, "'samples' is missing; expected interleaved frames [ax, ay, az, gx, gy, gz, …].");
        }
        catch (JsonException ex)
        {
            return new(400, $"Malformed JSON: {ex.Message} Expected {{\"samples\": [ax, ay, az, gx, gy, gz, …]}}.", "Malformed JSON");
        }
        catch (InvalidOperationException)
        {
            return InvalidText;
        }
    }

    /// <summary>
    /// 413 when an append of <paramref name="frames"/> frames could complete more than <paramref name="maxWindows"/>
    /// windows: a window ends every <paramref name="stride"/> frames, so at most ⌈frames / stride⌉ windows end
    /// within the append, whatever the stream already buffered; more than maxWindows × stride frames is refused.
    /// </summary>
    public static BodyError? CheckAppendSize(int frames, int windowLength, int stride, int maxWindows)
    {
        var maxFrames = (long)maxWindows * stride;
        return frames <= maxFrames
            ? null
            : new(413, $"{frames} frames in one append; at most {maxFrames} frames are accepted per request ({maxWindows} windows of {windowLength} frames, one every {stride} frames); send the rest in further appends. Nothing was appended.", "Too many frames in one append");
    }

    /// <summary>
    /// A stream id as the service accepts it: 1 to <see cref="MaxStreamIdLength"/> characters, no control
    /// characters, no lone surrogate (so it is valid Unicode text, the same in logs, metrics and responses).
    /// </summary>
    public static BodyError? ValidateStreamId(string? streamId, bool required)
    {
        if (string.IsNullOrEmpty(streamId))
        {
            return required ? new(400, $"The stream id is empty; expected 1 to {MaxStreamIdLength} characters.") : null;
        }

        if (streamId.Length > MaxStreamIdLength)
        {
            return new(400, $"The stream id has {streamId.Length} characters; expected 1 to {MaxStreamIdLength}.");
        }

        for (var i = 0; i < streamId.Length; i++)
        {
            var c = streamId[i];
            if (char.IsControl(c))
            {
                return new(400, $"The stream id holds a control character (U+{(int)c:X4}) at position {i}; expected printable text.");
            }

            if (char.GetUnicodeCategory(c) is System.Globalization.UnicodeCategory.Format or System.Globalization.UnicodeCategory.LineSeparator or System.Globalization.UnicodeCategory.ParagraphSeparator)
            {
                // Found from outside: bidirectional overrides and zero-width characters were accepted, so an id could be
                // shown (alarm lists, logs, dashboards) as another device's, or as text in another order than it holds.
                return new(400, $"The stream id holds an invisible formatting character (U+{(int)c:X4}, e.g. a zero-width space or a bidirectional override) at position {i}; expected visible text, so that no id can look like another.");
            }

            if (char.IsHighSurrogate(c) && i + 1 < streamId.Length && char.IsLowSurrogate(streamId[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(c))
            {
                return new(400, $"The stream id holds a lone surrogate (U+{(int)c:X4}) at position {i}; expected valid Unicode text.");
            }
        }

        return null;
    }

    private static BodyError? StartObject(ref Utf8JsonReader reader, string expected)
    {
        reader.Read(); // throws on an empty body
        return reader.TokenType == JsonTokenType.StartObject
            ? null
            : new(400, $"The body is {Describe(reader.TokenType)}; expected {expected}.");
    }

    /// <summary>
    /// 1 or 2 when the property name is <paramref name="first"/> or <paramref name="second"/>, else 0: exact
    /// first (no string is built), then case-insensitively as the web defaults read names.
    /// </summary>
    private static int Member(ref Utf8JsonReader reader, ReadOnlySpan<byte> first, ReadOnlySpan<byte> second)
    {
        if (reader.ValueTextEquals(first))
        {
            return 1;
        }

        if (!second.IsEmpty && reader.ValueTextEquals(second))
        {
            return 2;
        }

        var name = reader.GetString();
        return string.Equals(name, System.Text.Encoding.UTF8.GetString(first), StringComparison.OrdinalIgnoreCase) ? 1
            : !second.IsEmpty && string.Equals(name, System.Text.Encoding.UTF8.GetString(second), StringComparison.OrdinalIgnoreCase) ? 2
            : 0;
    }

    /// <summary>
    /// 400 naming a member the body does not define, once the rest of the body has been read: a body that is not JSON
    /// at all (<c>{"a":}</c>) is reported as malformed JSON (the reader throws), not as a body with an unknown member.
    /// </summary>
    private static BodyError UnknownMember(ref Utf8JsonReader reader, string known)
    {
        var name = reader.GetString() ?? "";
        while (reader.Read())
        {
        }

        return new(400, $"Unknown member '{(name.Length > 64 ? name[..64] + "…" : name)}'; the body holds only {known}.");
    }

    /// <summary>
    /// Reads the numbers of the array the reader is at (after its StartArray) into the buffer from
    /// <paramref name="offset"/> on, growing it, keeping at most <paramref name="limit"/> values but counting
    /// past them (so a window of the wrong length is reported with its whole length).
    /// </summary>
    private static BodyError? ReadNumbers(ref Utf8JsonReader reader, ref PooledFloats values, int offset, int limit, string name, int index, out int count)
    {
        count = 0;
        while (reader.Read())
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.EndArray:
                    return null;
                case JsonTokenType.Number:
                    if (!reader.TryGetSingle(out var value) || !float.IsFinite(value))
                    {
                        return new(400, $"{Where(name, index)}[{count}] is {Truncate(reader)}, which is not a finite float32; expected finite sensor values.");
                    }

                    if (count < limit)
                    {
                        if (offset + count >= values.Array.Length)
                        {
                            values.EnsureCapacity(Math.Max(offset + Math.Min(limit, 1024), (offset + count + 1) * 2));
                        }

                        values.Array[offset + count] = value;
                    }

                    count++;
                    break;
                default:
                    return new(400, $"{Where(name, index)}[{count}] is {Describe(reader.TokenType)}; expected a number (NaN and infinity are not accepted).");
            }
        }

        return new(400, $"{Where(name, index)} is not closed.");
    }

    // Only on errors: the happy path builds no strings per window.
    private static string Where(string name, int index) => index < 0 ? name : $"{name}[{index}]";

    private static string Truncate(Utf8JsonReader reader)
    {
        var text = System.Text.Encoding.UTF8.GetString(reader.ValueSpan);
        return text.Length > 32 ? text[..32] + "…" : text;
    }

    /// <summary>A JSON token as a detail names it, with its article: "an object", "an array", "a string", "null" ….</summary>
    private static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.StartObject => "an object",
        JsonTokenType.StartArray => "an array",
        JsonTokenType.String => "a string",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        _ => token.ToString(),
    };
}

/// <summary>A client mistake in a request body: status (400, 413 …) and what was wrong and expected.</summary>
internal sealed record BodyError(int Status, string Detail, string? Title = null)
{
    public IResult ToResult() => Results.Problem(statusCode: Status, title: Title, detail: Detail);
}

/// <summary>A request body in a pooled buffer; return it with <see cref="Dispose"/> (unless another owner returns it: <paramref name="owned"/> false).</summary>
internal readonly struct PooledBytes(byte[] array, int length, bool owned = true) : IDisposable
{
    public ReadOnlySpan<byte> Span => array.AsSpan(0, length);

    public int Length => length;

    public void Dispose()
    {
        if (owned)
        {
            ArrayPool<byte>.Shared.Return(array);
        }
    }
}

/// <summary>Parsed values in a pooled, growable float buffer; return it with <see cref="Dispose"/>.</summary>
internal struct PooledFloats : IDisposable
{
    public float[] Array;
    public int Count;

    public PooledFloats(int capacity)
    {
        Array = ArrayPool<float>.Shared.Rent(capacity);
    }

    public readonly ReadOnlyMemory<float> Memory => Array.AsMemory(0, Count);

    public void EnsureCapacity(int capacity)
    {
        if (Array.Length >= capacity)
        {
            return;
        }

        var grown = ArrayPool<float>.Shared.Rent(Math.Max(capacity, Array.Length * 2));
        Array.AsSpan().CopyTo(grown);
        ArrayPool<float>.Shared.Return(Array);
        Array = grown;
    }

    public readonly void Dispose() => ArrayPool<float>.Shared.Return(Array);
}
