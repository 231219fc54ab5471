namespace Har.Audit;

/// <summary>The state of an <see cref="AuditLog"/>: whether appends can be made durable now.</summary>
public enum AuditLogState
{
    /// <summary>Appends are written and fsynced normally.</summary>
    Writable,

    /// <summary>The folder cannot be written (read-only, disk full, I/O error): appends are refused with <see cref="AuditLogUnavailableException"/> until a probe write succeeds; reads keep working.</summary>
    Unavailable,
}

/// <summary>
/// The audit log cannot make an append durable right now (read-only folder or file system, disk full, I/O error).
/// Nothing was acknowledged; refuse the operation that needed the record (e.g. 503) and retry later: the log
/// probes the folder every <see cref="AuditLogOptions.RetryInterval"/> and becomes writable again on its own.
/// </summary>
public sealed class AuditLogUnavailableException : IOException
{
    /// <summary>Creates the exception.</summary>
    internal AuditLogUnavailableException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What failed and what to do.</param>
    public AuditLogUnavailableException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the I/O error behind it.</summary>
    /// <param name="message">What failed and what to do.</param>
    /// <param name="innerException">The I/O error.</param>
    internal AuditLogUnavailableException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// An acknowledged entry of the log is damaged (not a torn, never-acknowledged tail), so the log will not open:
/// it never drops acknowledged entries on its own. Restore the folder from a backup, or remove the damaged
/// entries deliberately with <see cref="AuditLog.Repair"/> (<c>har audit repair</c>), which records the removal.
/// </summary>
public sealed class AuditLogCorruptedException : IOException
{
    /// <summary>Creates the exception.</summary>
    internal AuditLogCorruptedException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What is damaged and what to do.</param>
    internal AuditLogCorruptedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    /// <param name="message">What is damaged and what to do.</param>
    /// <param name="innerException">The cause.</param>
    internal AuditLogCorruptedException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    internal AuditLogCorruptedException(string message, long entryIndex, long offset)
        : base(message)
    {
        EntryIndex = entryIndex;
        Offset = offset;
    }

    /// <summary>Gets the index of the first damaged entry.</summary>
    public long EntryIndex { get; }

    /// <summary>Gets the segment (<c>entries.log</c>) offset of the first damaged entry's frame.</summary>
    public long Offset { get; }
}
