using System.Text.Json;

namespace Har.Deployment;

/// <summary>The controller's part in a backup: its state, read while no command or analysis can change it.</summary>
public sealed partial class RolloutController
{
    /// <summary>
    /// Runs <paramref name="action"/> while the controller executes no command and no reconciliation (its gate is
    /// held), with the persisted rollout state as it is at that moment (<c>rollout.json</c>'s bytes, or <see langword="null"/>
    /// when there has been no rollout), the archived finished rollouts (<c>history/</c>, file store only) and the labelled
    /// windows of the accuracy gate (a fleet's: the rows of <c>har_fleet.labelled_windows</c>, after this replica wrote its
    /// own; one process's: those its feedback store holds).
    /// </summary>
    internal async Task<T> RunFrozenAsync<T>(Func<FrozenRolloutState, Task<T>> action, CancellationToken cancellationToken)
    {
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_fleet is not null)
            {
                await SyncAsync(force: false, cancellationToken).ConfigureAwait(false);
            }

            var state = _state is null ? null : JsonSerializer.SerializeToUtf8Bytes(_state, RolloutStateStore.Json);
            var history = new List<(string Name, byte[] Bytes)>();
            if (_store is RolloutStateStore file && Directory.Exists(Path.Combine(file.Directory, "history")))
            {
                foreach (var path in Directory.EnumerateFiles(Path.Combine(file.Directory, "history"), "*.json"))
                {
                    history.Add((Path.GetFileName(path), File.ReadAllBytes(path)));
                }
            }

            history.Sort(static (a, b) => string.CompareOrdinal(a.Name, b.Name));
            var labelled = LabelledWindowsForBackup();
            return await action(new FrozenRolloutState(state, _state?.RolloutId, _state?.Phase.ToString(), history, labelled)).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The labelled windows a backup keeps: the fleet's table (every replica's, this one's written first), or this process's store.</summary>
    /// <exception cref="IOException">The fleet's database did not answer.</exception>
    private List<ShippedLabel> LabelledWindowsForBackup()
    {
        if (_fleet is null)
        {
            return _serving.Feedback?.LabelledWindows() ?? [];
        }

        _serving.Feedback?.WriteLabelledWindows(_fleet);
        return _fleet.ReadLabelledWindows(0, []).Windows;
    }
}

/// <summary>The rollout state captured for a backup, with the accuracy gate's labelled windows (oldest first).</summary>
internal sealed record FrozenRolloutState(byte[]? State, string? RolloutId, string? Phase, IReadOnlyList<(string Name, byte[] Bytes)> History, IReadOnlyList<ShippedLabel> LabelledWindows);
