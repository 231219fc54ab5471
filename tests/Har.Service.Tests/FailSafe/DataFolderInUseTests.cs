namespace Har.Service.Tests.FailSafe;

/// <summary>
/// Starting on a data folder that is not fit to serve, found from outside as operator mistakes and crashes: a folder
/// another service serves (the second one came up "degraded", answered nothing and ignored SIGTERM), a registry lost
/// beside its audit log (the bundled models were seeded again and served), a damaged registry pointer (SIGABRT). Each
/// must stop the start with an exit code and the cause, changing nothing.
/// </summary>
public sealed class DataFolderInUseTests
{
    /// <summary>
    /// Starts a second service on <paramref name="first"/>'s data and models folders (its own key) until it exits. After
    /// <see cref="ServiceProcess.KillAsync"/> (<paramref name="afterKill"/>), a start that still finds the audit log's
    /// lock held is tried again, a few times: the kill's release of the lock is the kernel's, not the test's to time.
    /// </summary>
    private static async Task<(int ExitCode, string Output)> RunOnTheSameFolderAsync(ServiceProcess first, CancellationToken ct, bool afterKill = false)
    {
        for (var attempt = 1; ; attempt++)
        {
            var result = await ServiceProcess.RunUntilExitAsync(
                new Dictionary<string, string>
                {
                    ["Har:Service:DataDirectory"] = first.DataDirectory,
                    ["Har:ModelsDirectory"] = first.ModelsDirectory,
                    ["Har:Service:ApiKeys:0:Name"] = "second-operator",
                    ["Har:Service:ApiKeys:0:Key"] = "second-operator-key-0123456789abcdef",
                    ["Har:Service:ApiKeys:0:Roles:0"] = "operator",
                },
                ct);
            if (!afterKill || attempt == 10 || !result.Output.Contains("is in use by another Har.Service", StringComparison.Ordinal))
            {
                return result;
            }

            await Task.Delay(500, ct);
        }
    }

    [Fact]
    public async Task RegistryLostWhileStopped_TheServiceRefusesToStartInsteadOfSeedingBesideTheLog()
    {
        // Found from outside: with registry/ deleted while the service was stopped, it re-seeded its bundled models,
        // served 1.0.0 and appended new registrations to a log that recorded 31 versions with 1.3.0 current.
        var ct = TestContext.Current.CancellationToken;
        await using var first = await ServiceProcess.StartAsync(cancellationToken: ct);
        await first.KillAsync();
        Directory.Delete(Path.Combine(first.DataDirectory, "registry"), recursive: true);

        var (exit, output) = await RunOnTheSameFolderAsync(first, ct, afterKill: true);

        Assert.True(exit == 2 && output.Contains("holds no registered version, but its audit log", StringComparison.Ordinal), $"exit {exit}: {output}");
        Assert.Contains("the registry was lost while its log was kept", output, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(first.DataDirectory, "registry")) && Directory.EnumerateDirectories(Path.Combine(first.DataDirectory, "registry"), "v*").Any(), "nothing was seeded");
    }

    [Fact]
    public async Task RegistryPointerDamagedWhileStopped_ExitsWithCode1AndTheCause_NotAnAbort()
    {
        // Found from outside: a damaged registry/current (or rollout state) failed the rollout loop while the host was
        // starting, which cancelled Kestrel's bind: an unhandled TaskCanceledException, SIGABRT and a core dump, while
        // the log said "stops with exit code 1".
        var ct = TestContext.Current.CancellationToken;
        await using var first = await ServiceProcess.StartAsync(cancellationToken: ct);
        await first.KillAsync();
        await File.WriteAllTextAsync(Path.Combine(first.DataDirectory, "registry", "current"), "garbage", ct);

        var (exit, output) = await RunOnTheSameFolderAsync(first, ct, afterKill: true);

        Assert.True(exit == 1, $"exit {exit}: {output}");
        Assert.Contains("The registry pointer", output, StringComparison.Ordinal);
        Assert.Contains("expected a version folder name", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SecondServiceOnTheSameDataFolder_RefusesAtStartNamingIt_AndTheFirstKeepsServing()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var first = await ServiceProcess.StartAsync(cancellationToken: ct);
        var keysBefore = Directory.GetFiles(first.DataDirectory, "*", SearchOption.TopDirectoryOnly).Order(StringComparer.Ordinal).ToArray();

        var (exit, output) = await RunOnTheSameFolderAsync(first, ct);

        Assert.True(exit == 2, $"exit {exit}: {output}");
        Assert.Contains("is in use by another Har.Service (its audit log", output, StringComparison.Ordinal); // a JSON log line: quotes escaped
        Assert.Contains(first.DataDirectory, output, StringComparison.Ordinal);
        Assert.DoesNotContain("is the data volume writable", output, StringComparison.Ordinal);
        Assert.Equal(keysBefore, Directory.GetFiles(first.DataDirectory, "*", SearchOption.TopDirectoryOnly).Order(StringComparer.Ordinal).ToArray());
        using var client = first.CreateClient(first.OperatorKey);
        using var ready = await client.GetAsync("/ready", ct);
        Assert.Equal(System.Net.HttpStatusCode.OK, ready.StatusCode);
    }
}
