using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using FsCheck;
using FsCheck.Fluent;
using Har.Testing;

namespace Har.Audit.Tests.Json;

/// <summary>RFC 8785 against the published vectors (../shared/reference/jcs_vectors.json, read in place).</summary>
public sealed class CanonicalJsonTests
{
    private static JsonDocument Vectors() => JsonDocument.Parse(File.ReadAllBytes(TestPaths.RequireReference("jcs_vectors.json")));

    [Fact]
    public void Canonicalize_ReferenceFiles_MatchExpectedBytes()
    {
        using var doc = Vectors();
        var count = 0;
        foreach (var file in doc.RootElement.GetProperty("files").EnumerateArray())
        {
            var input = Encoding.UTF8.GetBytes(file.GetProperty("input").GetString()!);
            var expected = Convert.FromHexString(file.GetProperty("expected_utf8_hex").GetString()!);
            var actual = CanonicalJson.Canonicalize(input);
            Assert.True(expected.AsSpan().SequenceEqual(actual), $"{file.GetProperty("name").GetString()}: got {Encoding.UTF8.GetString(actual)}");
            count++;
        }

        Assert.Equal(6, count);
    }

    [Fact]
    public void FormatNumber_RfcAppendixB_MatchesOrRejects()
    {
        using var doc = Vectors();
        foreach (var item in doc.RootElement.GetProperty("rfc_appendix_b_numbers").GetProperty("items").EnumerateArray()
                     .Concat(doc.RootElement.GetProperty("es6_number_samples").GetProperty("items").EnumerateArray()))
        {
            var bits = ulong.Parse(item.GetProperty("ieee754_hex").GetString()!, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            var value = BitConverter.UInt64BitsToDouble(bits);
            if (item.TryGetProperty("expect_error", out var err) && err.GetBoolean())
            {
                Assert.Throws<FormatException>(() => CanonicalJson.FormatNumber(value));
            }
            else
            {
                Assert.Equal(item.GetProperty("expected").GetString(), CanonicalJson.FormatNumber(value));
            }
        }
    }

    /// <summary>Regenerates the first lines of the reference es6testfile100m.txt and compares their published SHA-256.</summary>
    [Theory]
    [InlineData(1000)]
    [InlineData(10000)]
    [InlineData(100000)]
    public void FormatNumber_Es6TestFilePrefix_MatchesPublishedChecksum(int lines)
    {
        using var doc = Vectors();
        var root = doc.RootElement;
        var expected = root.GetProperty("es6testfile_checksums").GetProperty("items").EnumerateArray()
            .Single(i => i.GetProperty("lines").GetInt32() == lines);
        var statics = root.GetProperty("es6testfile_generator").GetProperty("static_u64").EnumerateArray()
            .Select(e => ulong.Parse(e.GetString()!, NumberStyles.HexNumber, CultureInfo.InvariantCulture)).ToArray();

        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var block = new byte[32];
        var data = ReadOnlyMemory<byte>.Empty;
        long bytes = 0;
        for (var i = 0; i < lines; i++)
        {
            ulong bits;
            if (i < statics.Length)
            {
                bits = statics[i];
            }
            else if (i < statics.Length + 2000)
            {
                bits = 0x0010000000000000UL + (ulong)(i - statics.Length);
            }
            else
            {
                while (true)
                {
                    if (data.IsEmpty)
                    {
                        block = SHA256.HashData(block);
                        data = block;
                    }

                    bits = BinaryPrimitives.ReadUInt64LittleEndian(data.Span);
                    data = data[8..];
                    var d = BitConverter.UInt64BitsToDouble(bits);
                    if (double.IsFinite(d) && d != 0)
                    {
                        break;
                    }
                }
            }

            var line = Encoding.ASCII.GetBytes(bits.ToString("x", CultureInfo.InvariantCulture) + "," + CanonicalJson.FormatNumber(BitConverter.UInt64BitsToDouble(bits)) + "\n");
            sha.AppendData(line);
            bytes += line.Length;
        }

        Assert.Equal(expected.GetProperty("bytes").GetInt64(), bytes);
        Assert.Equal(expected.GetProperty("sha256").GetString(), Convert.ToHexStringLower(sha.GetHashAndReset()));
    }

    [Fact]
    public void Canonicalize_RfcSortingExample_OrdersByUtf16CodeUnits()
    {
        using var doc = Vectors();
        var test = doc.RootElement.GetProperty("rfc_sorting_test");
        using var output = JsonDocument.Parse(CanonicalJson.Canonicalize(Encoding.UTF8.GetBytes(test.GetProperty("input").GetString()!)));
        var values = output.RootElement.EnumerateObject().Select(p => p.Value.GetString()).ToArray();
        Assert.Equal(test.GetProperty("expected_value_order").EnumerateArray().Select(e => e.GetString()).ToArray(), values);
    }

    [Fact]
    public void Canonicalize_RfcUtf8Example_MatchesBytes()
    {
        using var doc = Vectors();
        var values = doc.RootElement.GetProperty("files").EnumerateArray().Single(f => f.GetProperty("name").GetString() == "values");
        var expected = Convert.FromHexString(doc.RootElement.GetProperty("rfc_utf8_example").GetProperty("expected_utf8_hex").GetString()!);
        Assert.Equal(expected, CanonicalJson.Canonicalize(Encoding.UTF8.GetBytes(values.GetProperty("input").GetString()!)));
    }

    [Fact]
    public void Canonicalize_MustFailInputs_Throw()
    {
        using var doc = Vectors();
        var count = 0;
        foreach (var item in doc.RootElement.GetProperty("must_fail").GetProperty("items").EnumerateArray())
        {
            var input = Encoding.UTF8.GetBytes(item.GetProperty("input").GetString()!);
            var ex = Assert.ThrowsAny<FormatException>(() => CanonicalJson.Canonicalize(input));
            Assert.False(string.IsNullOrEmpty(ex.Message), item.GetProperty("reason").GetString());
            count++;
        }

        Assert.Equal(4, count);
    }

    [Fact]
    public void Canonicalize_DuplicateName_SaysWhichName()
    {
        var ex = Assert.Throws<FormatException>(() => CanonicalJson.Canonicalize("""{"x":{"a":1,"a":2}}"""u8));
        Assert.Contains("$.x", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'a'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Canonicalize_UnsortedPlainNamesEscapesAndNumbers_WritesCanonicalForm()
    {
        var input = """{"e":100,"b":-0.50,"d":1.5,"c":-0,"a":"x\u003Ey","f":"plain","g":1E2,"h":0.0000001,"i":1234567890123456}"""u8;

        var actual = Encoding.UTF8.GetString(CanonicalJson.Canonicalize(input));

        Assert.Equal("""{"a":"x>y","b":-0.5,"c":0,"d":1.5,"e":100,"f":"plain","g":100,"h":1e-7,"i":1234567890123456}""", actual);
    }

    [Theory]
    [InlineData("""{"x":"a\ud800"}""", "$.x")]
    [InlineData("""{"x":["ok","\udc00b"]}""", "$.x[1]")]
    [InlineData("""{"x":{"y":"\ud800\ud800"}}""", "$.x.y")]
    public void Canonicalize_LoneSurrogateEscape_IsRejectedWithPath(string json, string path)
    {
        var ex = Assert.Throws<FormatException>(() => CanonicalJson.Canonicalize(Encoding.UTF8.GetBytes(json)));

        Assert.StartsWith(path + ": ", ex.Message, StringComparison.Ordinal);
        Assert.Contains("lone surrogate", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>Law: a number literal copied verbatim (the fast path) is exactly what the ECMAScript formatting of its double gives.</summary>
    [Fact]
    public void Canonicalize_NumberLiterals_MatchFormatNumberOfTheirDouble()
    {
        var digits = Gen.Choose(0, 9).Select(d => (char)('0' + d));
        var literal =
            from negative in Gen.Elements(false, true)
            from intLength in Gen.Choose(0, 17)
            from intDigits in Gen.ArrayOf(digits, intLength)
            from zeros in Gen.Choose(0, 8)
            from fracLength in Gen.Choose(0, 17)
            from fracDigits in Gen.ArrayOf(digits, fracLength)
            select (negative ? "-" : string.Empty)
                + (intLength == 0 ? "0" : (intDigits[0] == '0' ? "1" : string.Empty) + new string(intDigits))
                + (fracLength == 0 && zeros == 0 ? string.Empty : "." + new string('0', zeros) + new string(fracDigits) + (fracLength == 0 ? "0" : string.Empty));
        var doubles = Gen.Zip(Gen.Choose(int.MinValue, int.MaxValue), Gen.Choose(int.MinValue, int.MaxValue)).Select(t => BitConverter.Int64BitsToDouble(((long)t.Item1 << 32) | (uint)t.Item2))
            .Where(double.IsFinite).Select(d => d.ToString("R", CultureInfo.InvariantCulture));
        Prop.ForAll(Gen.OneOf(literal, doubles).ToArbitrary(), text =>
        {
            var actual = Encoding.UTF8.GetString(CanonicalJson.Canonicalize(Encoding.UTF8.GetBytes("[" + text + "]")));
            var expected = "[" + CanonicalJson.FormatNumber(double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture)) + "]";
            return (actual == expected).Label($"{text}: {actual} vs {expected}");
        }).QuickCheckThrowOnFailure();
    }

    /// <summary>Law: canonicalisation is idempotent and preserves the value (numbers compared as doubles).</summary>
    [Fact]
    public void Canonicalize_RandomDocuments_IsIdempotentAndValuePreserving()
    {
        var gen = Gen.Sized(size => JsonGen(Math.Min(size, 6)));
        Prop.ForAll(gen.ToArbitrary(), json =>
        {
            var once = CanonicalJson.Canonicalize(Encoding.UTF8.GetBytes(json));
            var twice = CanonicalJson.Canonicalize(once);
            using var a = JsonDocument.Parse(json);
            using var b = JsonDocument.Parse(once);
            return once.AsSpan().SequenceEqual(twice) && SameValue(a.RootElement, b.RootElement);
        }).QuickCheckThrowOnFailure();
    }

    private static Gen<string> JsonGen(int depth)
    {
        var str = Gen.Elements("a", "b", "A", "é", "€", "😀", "\n", "\"q\"", "\\", "", "z\u0001", "ab", "aa");
        var number = Gen.Choose(-1000000, 1000000).Select(i => i / 7.0).Select(d => d.ToString("R", CultureInfo.InvariantCulture));
        var leaf = Gen.OneOf(
            str.Select(s => JsonSerializer.Serialize(s)),
            number,
            Gen.Elements("true", "false", "null", "1e30", "-0", "0.000001", "1E-7", "123456789012345680000"));
        if (depth <= 0)
        {
            return leaf;
        }

        var child = JsonGen(depth - 1);
        var array = Gen.Choose(0, 4).SelectMany(n => Gen.ListOf(child, n)).Select(items => "[" + string.Join(",", items) + "]");
        var obj = Gen.Choose(0, 4).SelectMany(n => Gen.ListOf(Gen.Zip(str, child), n)).Select(members =>
            "{" + string.Join(",", members.DistinctBy(m => m.Item1).Select(m => JsonSerializer.Serialize(m.Item1) + " : " + m.Item2)) + "}");
        return Gen.OneOf(leaf, array, obj);
    }

    private static bool SameValue(JsonElement a, JsonElement b) => a.ValueKind switch
    {
        JsonValueKind.Object => b.ValueKind == JsonValueKind.Object
            && a.EnumerateObject().Count() == b.EnumerateObject().Count()
            && a.EnumerateObject().All(p => b.TryGetProperty(p.Name, out var q) && SameValue(p.Value, q)),
        JsonValueKind.Array => b.ValueKind == JsonValueKind.Array
            && a.GetArrayLength() == b.GetArrayLength()
            && a.EnumerateArray().Zip(b.EnumerateArray()).All(t => SameValue(t.First, t.Second)),
        JsonValueKind.Number => b.ValueKind == JsonValueKind.Number && a.GetDouble() == b.GetDouble(),
        JsonValueKind.String => b.ValueKind == JsonValueKind.String && a.GetString() == b.GetString(),
        _ => a.ValueKind == b.ValueKind,
    };
}
