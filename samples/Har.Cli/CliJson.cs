using System.Text.Json;

namespace Har.Cli;

/// <summary>JSON settings shared by every <c>--json</c> output.</summary>
internal static class CliJson
{
    public static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
}
