namespace Har.Deployment;

/// <summary>The labelled windows of a single-process deployment kept on disk across restarts (<see cref="FeedbackJournal"/>).</summary>
public sealed partial class FeedbackStore
{
    private FeedbackJournal? _journal;

    /// <summary>Gets the journal's path, or <see langword="null"/> when the windows labelled here live in memory only.</summary>
    internal string? JournalPath => _journal?.Path;

    /// <summary>
    /// Keeps every window labelled here from now on in the journal at <paramref name="path"/>, after restoring the windows
    /// it already holds (a restarted process's accuracy gate reads them as the old process's did). Call it once, before
    /// labels arrive; a fleet does not use it (its replicas keep their labelled windows in har_fleet.labelled_windows).
    /// </summary>
    /// <returns>The windows restored, and the lines skipped as unreadable (a line torn by a crash).</returns>
    internal (int Restored, int Skipped) AttachJournal(string path)
    {
        if (_journal is not null)
        {
            throw new InvalidOperationException($"The feedback store already keeps its labelled windows in '{_journal.Path}'.");
        }

        var journal = FeedbackJournal.Open(path, Limits.LabelledWindows, _time.GetUtcNow(), out var windows, out var skipped, out var keptAside);
        var restored = Import(windows); // not journaled again: the journal is attached after
        _journal = journal;
        DamagedJournalCopy = keptAside;
        return (restored, skipped);
    }

    /// <summary>
    /// Gets where <see cref="AttachJournal"/> kept a copy of a damaged journal (more than a torn last line unreadable)
    /// before rewriting it with the windows it could read, or <see langword="null"/>.
    /// </summary>
    internal string? DamagedJournalCopy { get; private set; }

    /// <summary>
    /// The labelled windows this store holds, oldest first, as the journal writes them (for a backup: the accuracy gate's
    /// evidence, which new traffic cannot rebuild once the windows it labelled are gone).
    /// </summary>
    internal List<ShippedLabel> LabelledWindows()
    {
        lock (_labelledLock)
        {
            var versions = Volatile.Read(ref _versions); // read after the windows' versions were added (they only grow)
            var held = (int)Math.Min(_labelledTotal, _labelled.Length);
            var first = _labelledTotal > _labelled.Length ? (int)(_labelledTotal % _labelled.Length) : 0;
            var windows = new List<ShippedLabel>(held);
            for (var i = 0; i < held; i++)
            {
                windows.Add(Ship(versions, _labelled[(first + i) % _labelled.Length]));
            }

            return windows;
        }
    }

    /// <summary>Makes the journal's appended windows durable (fsync); nothing without a journal.</summary>
    internal void SyncJournal() => _journal?.Sync();

    /// <summary>Closes the journal (durably); the store keeps working in memory.</summary>
    internal void CloseJournal()
    {
        var journal = Interlocked.Exchange(ref _journal, null);
        journal?.Dispose();
    }
}
