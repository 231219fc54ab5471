using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Har.Drift.Tests;

/// <summary>Reads the SciPy/NumPy reference vectors copied from ../shared/reference (strict JSON, non-finite floats as strings).</summary>
internal static class ReferenceVectors
{
    private static readonly Lazy<JsonDocument> Ks = new(() => Load("ks_vectors.json"));
    private static readonly Lazy<JsonDocument> Psi = new(() => Load("psi_vectors.json"));

    public static JsonElement KsRoot => Ks.Value.RootElement;

    public static JsonElement PsiRoot => Psi.Value.RootElement;

    public static IEnumerable<JsonElement> KsPairs => KsRoot.GetProperty("pairs").EnumerateArray();

    public static IEnumerable<JsonElement> PsiPairs => PsiRoot.GetProperty("pairs").EnumerateArray();

    public static JsonElement KsPair(string name) => KsPairs.Single(p => p.GetProperty("name").GetString() == name);

    public static JsonElement PsiPair(string name) => PsiPairs.Single(p => p.GetProperty("name").GetString() == name);

    /// <summary>
    /// The sample <paramref name="which"/> ("x" or "y") of a KS pair: listed in full for small pairs; the large pairs
    /// give a formula, which is evaluated here and checked against the SHA-256 of the comma-joined Python reprs.
    /// </summary>
    public static double[] KsSample(JsonElement pair, string which)
    {
        if (pair.TryGetProperty(which, out var listed))
        {
            return Numbers(listed);
        }

        var name = pair.GetProperty("name").GetString();
        const double Golden = 0.6180339887498949;
        const double Plastic = 0.7548776662466927;
        double[] values = (name, which) switch
        {
            ("golden_pow1.05_200_vs_plastic_10001", "x") => Seq(200, i => Math.Pow((i * Golden) % 1.0, 1.05)),
            ("golden_pow1.05_200_vs_plastic_10001", "y") => Seq(10001, j => (j * Plastic) % 1.0),
            ("golden_10000_vs_plastic_pow1.02_10000", "x") => Seq(10000, i => (i * Golden) % 1.0),
            ("golden_10000_vs_plastic_pow1.02_10000", "y") => Seq(10000, i => Math.Pow((i * Plastic) % 1.0, 1.02)),
            _ => throw new InvalidDataException($"No formula known for {name}.{which}."),
        };

        var csv = string.Join(',', values.Select(PythonRepr));
        var sha = Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes(csv)));
        if (sha != pair.GetProperty($"{which}_sha256_of_repr_csv").GetString())
        {
            throw new InvalidDataException($"{name}.{which} regenerated from its formula does not match the recorded SHA-256.");
        }

        return values;
    }

    /// <summary>Python's repr of a finite double (shortest round-trip, lower-case two-digit exponent).</summary>
    public static string PythonRepr(double v)
    {
        var s = v.ToString("R", CultureInfo.InvariantCulture);
        var e = s.IndexOf('E', StringComparison.Ordinal);
        if (e < 0)
        {
            return s.Contains('.', StringComparison.Ordinal) ? s : s + ".0";
        }

        var mantissa = s[..e];
        var exp = int.Parse(s[(e + 1)..], CultureInfo.InvariantCulture);
        return $"{mantissa}e{(exp < 0 ? "-" : "+")}{Math.Abs(exp):00}";
    }

    private static double[] Seq(int count, Func<int, double> f) => Enumerable.Range(1, count).Select(f).ToArray();

    public static double Number(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Number => e.GetDouble(),
        JsonValueKind.String => e.GetString() switch
        {
            "NaN" => double.NaN,
            "Infinity" => double.PositiveInfinity,
            "-Infinity" => double.NegativeInfinity,
            var s => double.Parse(s!, CultureInfo.InvariantCulture),
        },
        _ => throw new InvalidDataException($"Expected a number, got {e.ValueKind}."),
    };

    public static double[] Numbers(JsonElement e) => e.EnumerateArray().Select(Number).ToArray();

    public static long[] Longs(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt64()).ToArray();

    private static JsonDocument Load(string file) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", file)));
}
