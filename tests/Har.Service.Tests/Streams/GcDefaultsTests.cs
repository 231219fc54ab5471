using System.Text.Json;

namespace Har.Service.Tests.Streams;

/// <summary>
/// Point 52 of docs/hardening.md: the service built from the repository (<c>dotnet run</c>, an image built without
/// <c>deploy/Dockerfile</c>) runs with the GC settings of the container, not the Web SDK's server GC, which kept up to
/// three times the live heap committed under a soak. The build's runtimeconfig must say what the Dockerfile's
/// <c>DOTNET_gc*</c>/<c>DOTNET_GC*</c> variables say.
/// </summary>
public sealed class GcDefaultsTests
{
    [Fact]
    public void TheBuiltServiceRunsWithTheContainersGcSettings()
    {
        var dockerfile = StreamMemoryTests.DockerfileGcSettings();
        var runtimeConfig = Path.ChangeExtension(ServiceProcess.ServiceDll, ".runtimeconfig.json");
        using var document = JsonDocument.Parse(File.ReadAllText(runtimeConfig));
        var properties = document.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties");

        Assert.Equal("0", dockerfile["DOTNET_gcServer"]);
        Assert.Equal(JsonValueKind.False, Setting(properties, "System.GC.Server").ValueKind);
        Assert.Equal("1", dockerfile["DOTNET_gcConcurrent"]);
        Assert.Equal(JsonValueKind.True, Setting(properties, "System.GC.Concurrent").ValueKind);
        // DOTNET_GC* numbers are read as hexadecimal; 5 is 5 either way.
        Assert.Equal(Convert.ToInt32(dockerfile["DOTNET_GCConserveMemory"], 16), Setting(properties, "System.GC.ConserveMemory").GetInt32());
        Assert.Equal(["DOTNET_GCConserveMemory", "DOTNET_gcConcurrent", "DOTNET_gcServer"], dockerfile.Keys.Order(StringComparer.Ordinal));
    }

    private static JsonElement Setting(JsonElement properties, string name)
    {
        Assert.True(properties.TryGetProperty(name, out var value), $"the service's runtimeconfig sets no {name}: the service would run with the runtime's default (samples/Har.Service/Har.Service.csproj sets it)");
        return value;
    }
}
