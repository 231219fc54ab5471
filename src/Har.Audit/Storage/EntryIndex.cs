using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace Har.Audit.Storage;

/// <summary>One row of <c>entries.idx</c>: where an entry is and what it can be queried by.</summary>
internal readonly record struct IndexRow(long Offset, long Ticks, int FrameLength, AuditRecordKind Kind, uint EventType, uint EntityType, uint EntityId, uint Actor)
{
    public const int Size = 40;

    public static uint HashText(string s)
    {
        var h = 2166136261u;
        foreach (var c in s)
        {
            h = (h ^ c) * 16777619u;
        }

        return h;
    }

    public static IndexRow For(long offset, int frameLength, AuditRecord record) => new(
        offset,
        record.Timestamp.UtcTicks,
        frameLength,
        record.Kind,
        HashText(record.IndexEventType),
        HashText(record.IndexEntityType),
        HashText(record.IndexEntityId),
        HashText(record.IndexActor));

    public static IndexRow Read(ReadOnlySpan<byte> s) => new(
        BinaryPrimitives.ReadInt64LittleEndian(s),
        BinaryPrimitives.ReadInt64LittleEndian(s[8..]),
        BinaryPrimitives.ReadInt32LittleEndian(s[16..]),
        (AuditRecordKind)BinaryPrimitives.ReadInt32LittleEndian(s[20..]),
        BinaryPrimitives.ReadUInt32LittleEndian(s[24..]),
        BinaryPrimitives.ReadUInt32LittleEndian(s[28..]),
        BinaryPrimitives.ReadUInt32LittleEndian(s[32..]),
        BinaryPrimitives.ReadUInt32LittleEndian(s[36..]));

    public void Write(Span<byte> s)
    {
        BinaryPrimitives.WriteInt64LittleEndian(s, Offset);
        BinaryPrimitives.WriteInt64LittleEndian(s[8..], Ticks);
        BinaryPrimitives.WriteInt32LittleEndian(s[16..], FrameLength);
        BinaryPrimitives.WriteInt32LittleEndian(s[20..], (int)Kind);
        BinaryPrimitives.WriteUInt32LittleEndian(s[24..], EventType);
        BinaryPrimitives.WriteUInt32LittleEndian(s[28..], EntityType);
        BinaryPrimitives.WriteUInt32LittleEndian(s[32..], EntityId);
        BinaryPrimitives.WriteUInt32LittleEndian(s[36..], Actor);
    }
}

/// <summary><c>entries.idx</c>: fixed 40-byte rows, row i describing entry i. Derived from the segment; rebuilt on open past the last seal.</summary>
/// <remarks>
/// Read-only (a view of a log another process may be writing): the file is opened for reading only, may be missing, and
/// is never cut or written; <see cref="Reset"/> trusts its first rows, and the rows <see cref="Append"/> stages after
/// them stay in memory, where <see cref="Read"/> and <see cref="ReadRows"/> find them.
/// </remarks>
internal sealed class EntryIndex : IDisposable
{
    private readonly SafeFileHandle? _file;
    private readonly bool _readOnly;
    private byte[] _pending = new byte[IndexRow.Size * 256];
    private int _pendingRows;

    /// <summary>Read-only: the number of rows trusted from the file; the rows past them are in <see cref="_pending"/>.</summary>
    private long _fileRows;

    public EntryIndex(string path, bool readOnly = false)
    {
        Path = path;
        _readOnly = readOnly;
        if (!readOnly)
        {
            _file = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
            return;
        }

        try
        {
            _file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (FileNotFoundException)
        {
            // rebuilt in memory from the segment
        }
    }

    public string Path { get; }

    public long Count { get; private set; }

    public long FileRows => _file is null ? 0 : RandomAccess.GetLength(_file) / IndexRow.Size;

    public void Reset(long size)
    {
        if (!_readOnly)
        {
            RandomAccess.SetLength(_file!, size * IndexRow.Size);
        }

        Count = size;
        _fileRows = size;
        _pendingRows = 0;
    }

    public void Append(in IndexRow row)
    {
        if ((_pendingRows + 1) * IndexRow.Size > _pending.Length)
        {
            Array.Resize(ref _pending, _pending.Length * 2);
        }

        row.Write(_pending.AsSpan(_pendingRows * IndexRow.Size));
        _pendingRows++;
    }

    /// <summary>Writes the staged rows to the file (read-only: keeps them in memory).</summary>
    public void WritePending()
    {
        if (_pendingRows == 0 || _readOnly)
        {
            return;
        }

        RandomAccess.Write(_file!, _pending.AsSpan(0, _pendingRows * IndexRow.Size), Count * IndexRow.Size);
        Count += _pendingRows;
        _pendingRows = 0;
    }

    public void Flush() => RandomAccess.FlushToDisk(_file!);

    public IndexRow Read(long index)
    {
        Span<byte> row = stackalloc byte[IndexRow.Size];
        if (ReadRows(index, row) != 1)
        {
            throw new InvalidDataException($"Index row {index} is missing from {Path}.");
        }

        return IndexRow.Read(row);
    }

    /// <summary>Reads consecutive rows starting at <paramref name="first"/>; returns how many were read (read-only: at most up to the end of the file's trusted rows or of the rows in memory, so a caller reads on).</summary>
    public int ReadRows(long first, Span<byte> destination)
    {
        if (!_readOnly)
        {
            return RandomAccess.Read(_file!, destination, first * IndexRow.Size) / IndexRow.Size;
        }

        var wanted = destination.Length / IndexRow.Size;
        if (first < _fileRows)
        {
            var rows = (int)Math.Min(wanted, _fileRows - first);
            return RandomAccess.Read(_file!, destination[..(rows * IndexRow.Size)], first * IndexRow.Size) / IndexRow.Size;
        }

        var inMemory = (int)Math.Clamp(_pendingRows - (first - _fileRows), 0, wanted);
        if (inMemory == 0)
        {
            return 0;
        }

        _pending.AsSpan((int)(first - _fileRows) * IndexRow.Size, inMemory * IndexRow.Size).CopyTo(destination);
        return inMemory;
    }

    public void Dispose() => _file?.Dispose();
}
