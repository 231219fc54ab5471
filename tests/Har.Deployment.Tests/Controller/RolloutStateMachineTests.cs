using Har.Deployment.Tests.Support;

namespace Har.Deployment.Tests.Controller;

/// <summary>Every command in every phase: allowed commands reach the expected phase, refused ones change nothing.</summary>
public sealed class RolloutStateMachineTests
{
    private const string None = "None";

    /// <summary>The expected phase after each command, per phase; absent = refused.</summary>
    private static readonly Dictionary<string, Dictionary<RolloutCommandKind, RolloutPhase>> Expected = new()
    {
        [None] = new() { [RolloutCommandKind.Start] = RolloutPhase.AwaitingApproval },
        [nameof(RolloutPhase.Pending)] = new() { [RolloutCommandKind.Abort] = RolloutPhase.Aborted },
        [nameof(RolloutPhase.Progressing)] = new()
        {
            [RolloutCommandKind.Pause] = RolloutPhase.Paused,
            [RolloutCommandKind.Promote] = RolloutPhase.Succeeded,
            [RolloutCommandKind.Abort] = RolloutPhase.Aborted,
            [RolloutCommandKind.Rollback] = RolloutPhase.RolledBack,
        },
        [nameof(RolloutPhase.Paused)] = new()
        {
            [RolloutCommandKind.Resume] = RolloutPhase.Progressing,
            [RolloutCommandKind.Promote] = RolloutPhase.Succeeded,
            [RolloutCommandKind.Abort] = RolloutPhase.Aborted,
            [RolloutCommandKind.Rollback] = RolloutPhase.RolledBack,
        },
        [nameof(RolloutPhase.AwaitingApproval)] = new()
        {
            [RolloutCommandKind.Pause] = RolloutPhase.Paused,
            [RolloutCommandKind.Approve] = RolloutPhase.Progressing,
            [RolloutCommandKind.Promote] = RolloutPhase.Succeeded,
            [RolloutCommandKind.Abort] = RolloutPhase.Aborted,
            [RolloutCommandKind.Rollback] = RolloutPhase.RolledBack,
        },
        [nameof(RolloutPhase.Promoting)] = [],
        [nameof(RolloutPhase.Succeeded)] = new() { [RolloutCommandKind.Start] = RolloutPhase.AwaitingApproval, [RolloutCommandKind.Rollback] = RolloutPhase.RolledBack },
        [nameof(RolloutPhase.RollingBack)] = [],
        [nameof(RolloutPhase.RolledBack)] = new() { [RolloutCommandKind.Start] = RolloutPhase.AwaitingApproval },
        [nameof(RolloutPhase.Aborted)] = new() { [RolloutCommandKind.Start] = RolloutPhase.AwaitingApproval },
        [nameof(RolloutPhase.Failed)] = new() { [RolloutCommandKind.Start] = RolloutPhase.AwaitingApproval },
    };

    public static TheoryData<string, RolloutCommandKind> Cases()
    {
        var data = new TheoryData<string, RolloutCommandKind>();
        foreach (var phase in Expected.Keys)
        {
            foreach (var kind in Enum.GetValues<RolloutCommandKind>())
            {
                data.Add(phase, kind);
            }
        }

        return data;
    }

    [Fact]
    public void Table_CoversEveryPhase()
    {
        Assert.Equal(Enum.GetNames<RolloutPhase>().Order().Append(None).Order(), Expected.Keys.Order());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Execute_EveryCommandInEveryPhase_ExpectedTransitionOrRefusalWithoutChange(string phase, RolloutCommandKind kind)
    {
        using var env = new TestRegistry();
        await ArrangeAsync(env, phase);
        await using var controller = await env.OpenAsync(Options(env));
        Assert.Equal(phase, controller.Status?.Phase.ToString() ?? None);
        var before = controller.Status;
        var candidate = env.Registry.CurrentVersion == TestRegistry.Champion ? TestRegistry.Candidate : TestRegistry.Champion;
        var command = RolloutCommand.Create(kind, "operator", "state-machine test", candidate, "manual");

        if (Expected[phase].TryGetValue(kind, out var to))
        {
            var after = await controller.ExecuteAsync(command);
            Assert.Equal(to, after.Phase);
            Assert.True(after.Revision > (before?.Revision ?? 0));
            var persisted = RolloutController.ReadStatus(Path.GetDirectoryName(controller.StatePath)!)!;
            Assert.Equal(after.ToString(), persisted.ToString());
            Assert.Equal((after.Phase, after.Revision, after.UpdatedAt, after.Failures, after.ConsecutivePasses, after.Promoted), (persisted.Phase, persisted.Revision, persisted.UpdatedAt, persisted.Failures, persisted.ConsecutivePasses, persisted.Promoted));
            Assert.Equal(after.Steps.Select(Shape), persisted.Steps.Select(Shape));
        }
        else
        {
            await Assert.ThrowsAsync<RolloutCommandRejectedException>(() => controller.ExecuteAsync(command));
            Assert.Equal(before?.Revision, controller.Status?.Revision);
            Assert.Equal(before?.Phase, controller.Status?.Phase);
        }
    }

    private static RolloutControllerOptions Options(TestRegistry env, IRolloutHook? hook = null) => TestRegistry.Options(o =>
    {
        // A strategy that stops at an approval gate right after the first weight, then analyses.
        o.Strategies.Add(new ManualStrategy());
        o.BuiltInStrategies.SmokeTest = false;
        if (hook is not null)
        {
            o.Hooks.Add(hook);
            o.FailureThreshold = 1; // a refusing pre-rollout hook fails the rollout at once
        }
    });

    private static async Task ArrangeAsync(TestRegistry env, string phase)
    {
        if (phase == None)
        {
            return;
        }

        if (phase == nameof(RolloutPhase.Pending))
        {
            using var cts = new CancellationTokenSource();
            var hook = new DelegateRolloutHook("stuck", RolloutHookPoint.PreRollout, (_, _) =>
            {
                cts.Cancel();
                throw new OperationCanceledException(cts.Token);
            });
            await using var c = await env.OpenAsync(Options(env, hook));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => c.ExecuteAsync(Start(), cts.Token));
            return;
        }

        if (phase == nameof(RolloutPhase.Failed))
        {
            var deny = new DelegateRolloutHook("deny", RolloutHookPoint.PreRollout, (_, _) => ValueTask.FromResult(RolloutHookResult.Deny("no")));
            await using var c = await env.OpenAsync(Options(env, deny));
            await c.ExecuteAsync(Start());
            return;
        }

        await using (var c = await env.OpenAsync(Options(env)))
        {
            switch (phase)
            {
                case nameof(RolloutPhase.Succeeded):
                    await c.ExecuteAsync(RolloutCommand.Start(TestRegistry.Candidate, "recreate", "arrange", "arrange"));
                    return;
                case nameof(RolloutPhase.Progressing):
                    await c.ExecuteAsync(Start());
                    await c.ExecuteAsync(RolloutCommand.Approve("arrange-approver", "arrange: someone other than the starter approves"));
                    return;
                case nameof(RolloutPhase.Paused):
                    await c.ExecuteAsync(Start());
                    await c.ExecuteAsync(RolloutCommand.Approve("arrange-approver", "arrange: someone other than the starter approves"));
                    await c.ExecuteAsync(RolloutCommand.Pause("arrange", "arrange"));
                    return;
                case nameof(RolloutPhase.AwaitingApproval):
                    await c.ExecuteAsync(Start());
                    return;
                case nameof(RolloutPhase.RolledBack):
                    await c.ExecuteAsync(Start());
                    await c.ExecuteAsync(RolloutCommand.Rollback("arrange", "arrange"));
                    return;
                case nameof(RolloutPhase.Aborted):
                    await c.ExecuteAsync(Start());
                    await c.ExecuteAsync(RolloutCommand.Abort("arrange", "arrange"));
                    return;
                case nameof(RolloutPhase.Promoting) or nameof(RolloutPhase.RollingBack):
                    // Transient phases exist on disk only when a process died inside them.
                    await c.ExecuteAsync(Start());
                    break;
            }
        }

        var store = new RolloutStateStore(Path.Combine(env.Registry.Root, ".rollout"));
        var state = store.Load()!;
        state.Phase = Enum.Parse<RolloutPhase>(phase);
        store.Save(state);
    }

    private static (RolloutStepKind Kind, double Percent, TimeSpan Interval, int RequiredPasses, bool MirrorToStable) Shape(RolloutStep s) =>
        (s.Kind, s.Percent, s.Interval, s.RequiredPasses, s.MirrorToStable);

    private static RolloutCommand Start() => RolloutCommand.Start(TestRegistry.Candidate, "manual", "arrange", "arrange");

    private sealed class ManualStrategy : IRolloutStrategy
    {
        public string Name => "manual";

        public IReadOnlyList<RolloutStep> CreateSteps(RolloutStrategyContext context) =>
            [RolloutStep.SetWeight(10, mirrorToStable: true), RolloutStep.Approval(), RolloutStep.Analyze(TimeSpan.FromMinutes(1), 1)];
    }
}
