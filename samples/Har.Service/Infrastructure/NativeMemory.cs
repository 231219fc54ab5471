using System.Runtime.InteropServices;

namespace Har.Service.Infrastructure;

/// <summary>
/// Caps glibc's malloc arenas (<c>mallopt(M_ARENA_MAX)</c>), the native memory ONNX Runtime and the runtime allocate
/// from. glibc gives a thread that finds the arenas busy one of its own, up to 8 per core, and rarely returns the freed
/// pages of those arenas: under a steady soak the service's native memory grew about 1 MiB a minute in 17 arenas and was
/// not returned at idle; with 2 it stayed flat (docs/hardening.md, point 54). The environment's
/// <c>MALLOC_ARENA_MAX</c>, read by glibc itself at start, takes precedence.
/// </summary>
internal static class MallocArenas
{
    /// <summary>glibc's <c>M_ARENA_MAX</c> parameter of <c>mallopt</c>.</summary>
    private const int ArenaMaxParameter = -8;

    /// <summary>Applies <paramref name="max"/> arenas (0: glibc's default) and says what was done, for the start-up log.</summary>
    /// <param name="max">The most arenas, <c>Har:Service:MallocArenaMax</c>.</param>
    /// <returns>What applies, or <see langword="null"/> when nothing was asked or the platform has no glibc.</returns>
    public static string? Limit(int max)
    {
        if (!OperatingSystem.IsLinux() || max is < 0 or > 1024)
        {
            // Out of range: the options' validation refuses the start and says so.
            return null;
        }

        if (Environment.GetEnvironmentVariable("MALLOC_ARENA_MAX") is { Length: > 0 } fromEnvironment)
        {
            return $"malloc arenas: MALLOC_ARENA_MAX={fromEnvironment} from the environment (Har:Service:MallocArenaMax {max} not applied)";
        }

        if (max == 0)
        {
            return "malloc arenas: glibc's default, up to 8 per core (Har:Service:MallocArenaMax 0)";
        }

        try
        {
            return MallOpt(ArenaMaxParameter, max) == 1
                ? $"malloc arenas: at most {max} (Har:Service:MallocArenaMax)"
                : $"malloc arenas: the C library refused at most {max} (Har:Service:MallocArenaMax): not glibc";
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return $"malloc arenas: Har:Service:MallocArenaMax {max} not applied, the C library has no mallopt ({ex.GetType().Name})";
        }
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int MallOpt(int parameter, int value);
}
