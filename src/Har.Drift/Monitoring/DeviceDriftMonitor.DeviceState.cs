namespace Har.Drift;

/// <summary>The state the monitor keeps per device.</summary>
public sealed partial class DeviceDriftMonitor
{
    /// <summary>One device's monitor: its current window, physics history and latest report.</summary>
    private sealed class DeviceState
    {
        public DeviceState(string id, int windowLength, int channels)
        {
            Id = id;
            Frames = new FrameRing(windowLength, channels);
            Node = new LinkedListNode<DeviceState>(this);
        }

        public string Id { get; }

        public FrameRing Frames { get; }

        /// <summary>Gets or sets its history (replaced once, by a restore from the state store, before its first scoring).</summary>
        public DeviceHistory History { get; set; } = new();

        /// <summary>Gets or sets when it was first seen in this process (UTC): its frame 0.</summary>
        public DateTimeOffset FirstSeen { get; set; }

        /// <summary>Gets or sets whether it waits for its lookup in the state store (under the monitor's gate).</summary>
        public bool RestorePending { get; set; }

        /// <summary>Gets or sets how many lookups in the state store failed for it.</summary>
        public int RestoreFailures { get; set; }

        /// <summary>Gets or sets whether it was removed (<see cref="Remove"/>): its record in the store is a fresh state.</summary>
        public bool Removed { get; set; }

        /// <summary>Gets or sets the time provider timestamp of its last save to the state store (or of its first sight).</summary>
        public long LastSaved { get; set; }

        private int _dirty;
        private int _urgent;

        /// <summary>Gets whether it changed since its last save to the state store.</summary>
        public bool Dirty => Volatile.Read(ref _dirty) != 0;

        /// <summary>Gets whether its alarm changed since its last save to the state store.</summary>
        public bool Urgent => Volatile.Read(ref _urgent) != 0;

        /// <summary>Marks it changed since its last save; <paramref name="urgent"/>: its alarm changed.</summary>
        public void Changed(bool urgent)
        {
            Volatile.Write(ref _dirty, 1);
            if (urgent)
            {
                Volatile.Write(ref _urgent, 1);
            }
        }

        /// <summary>Clears both flags when its alarm changed (the caller journals it now); returns whether it did.</summary>
        public bool TakeChangesIfUrgent()
        {
            if (Interlocked.Exchange(ref _urgent, 0) == 0)
            {
                return false;
            }

            Volatile.Write(ref _dirty, 0);
            return true;
        }

        /// <summary>Clears both flags (the caller saves it now); returns whether it was urgent.</summary>
        public bool TakeChanges()
        {
            Volatile.Write(ref _dirty, 0);
            return Interlocked.Exchange(ref _urgent, 0) != 0;
        }

        public LinkedListNode<DeviceState> Node { get; }

        public Lock Scoring { get; } = new();

        public long LastSeen { get; set; }

        public long ScoredUpTo { get; set; }

        private DriftReport? _latest;

        public DriftReport? Latest
        {
            get => Volatile.Read(ref _latest);
            set => Volatile.Write(ref _latest, value);
        }
    }
}
