using System.Buffers;
using Har.Audit.Merkle;
using Microsoft.Win32.SafeHandles;

namespace Har.Audit.Storage;

/// <summary>
/// The stored Merkle nodes: one append-only file per level (<c>tree/level-NN.hashes</c>), node i of
/// level l being the hash of the complete subtree over leaves [i·2^l, (i+1)·2^l). Level l holds
/// ⌊n / 2^l⌋ nodes, so a proof reads O(log n) 32-byte nodes. Single writer; concurrent readers read
/// only nodes below the published size.
/// </summary>
/// <remarks>
/// Read-only (a view of a log another process may be writing): the files are opened for reading only and never cut,
/// created or written; <see cref="Reset"/> trusts the files up to the given size and only loads the frontier, and the
/// nodes <see cref="Append"/> stages after it stay in memory, where <see cref="ReadNode"/> finds them.
/// </remarks>
internal sealed class NodeStore : INodeSource, IDisposable
{
    private const int MaxLevels = 63;

    /// <summary>Nodes at this level and above (each covering ≥ 1024 leaves) are also kept in memory: 32 KiB per million entries.</summary>
    private const int CachedFromLevel = 10;
    private readonly string _dir;
    private readonly SafeFileHandle?[] _files = new SafeFileHandle?[MaxLevels];
    private readonly byte[][] _frontier = new byte[MaxLevels][];
    private readonly ArrayBufferWriter<byte>[] _pending = new ArrayBufferWriter<byte>[MaxLevels];
    private readonly Lock _openLock = new();
    private readonly byte[]?[] _cache = new byte[]?[MaxLevels];
    private readonly bool _readOnly;
    private long _count;

    /// <summary>Read-only: the number of leaves whose nodes are trusted from the files; the nodes past them are in <see cref="_pending"/>.</summary>
    private long _fileLeaves;

    public NodeStore(string directory, bool readOnly = false)
    {
        _dir = directory;
        _readOnly = readOnly;
        if (!readOnly)
        {
            Directory.CreateDirectory(directory);
        }

        for (var i = 0; i < MaxLevels; i++)
        {
            _frontier[i] = new byte[MerkleHasher.HashSize];
        }
    }

    /// <summary>Gets the number of leaves whose nodes are stored.</summary>
    public long Count => _count;

    public string LevelPath(int level) => Path.Combine(_dir, $"level-{level:D2}.hashes");

    /// <summary>Checks the files hold at least <paramref name="size"/> leaves' nodes.</summary>
    public bool Covers(long size)
    {
        for (var level = 0; level < MaxLevels && (size >> level) > 0; level++)
        {
            var path = LevelPath(level);
            if (!File.Exists(path) || new FileInfo(path).Length < (size >> level) * MerkleHasher.HashSize)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Cuts every level back to <paramref name="size"/> leaves and reloads the frontier (read-only: trusts the files up to <paramref name="size"/> leaves and drops the nodes kept in memory).</summary>
    public void Reset(long size)
    {
        foreach (var pending in _pending)
        {
            pending?.ResetWrittenCount();
        }

        for (var level = 0; level < MaxLevels; level++)
        {
            var nodes = size >> level;
            var path = LevelPath(level);
            if (nodes == 0)
            {
                Volatile.Write(ref _cache[level], null);
                if (!_readOnly && File.Exists(path))
                {
                    _files[level]?.Dispose();
                    _files[level] = null;
                    File.Delete(path);
                }

                continue;
            }

            var handle = Handle(level);
            if (!_readOnly)
            {
                RandomAccess.SetLength(handle, nodes * MerkleHasher.HashSize);
            }

            RandomAccess.Read(handle, _frontier[level], (nodes - 1) * MerkleHasher.HashSize);
            if (level >= CachedFromLevel)
            {
                var cache = new byte[Math.Max(nodes * 2, 64) * MerkleHasher.HashSize];
                RandomAccess.Read(handle, cache.AsSpan(0, (int)nodes * MerkleHasher.HashSize), 0);
                Volatile.Write(ref _cache[level], cache);
            }
        }

        _count = size;
        _fileLeaves = size;
    }

    /// <summary>Stages leaf hashes (and the parents they complete); <see cref="WritePending"/> writes them.</summary>
    public void Append(ReadOnlySpan<byte> leafHash)
    {
        Span<byte> node = stackalloc byte[MerkleHasher.HashSize];
        leafHash.CopyTo(node);
        var index = _count;
        for (var level = 0; ; level++)
        {
            var pending = _pending[level] ??= new ArrayBufferWriter<byte>(4096);
            node.CopyTo(pending.GetSpan(MerkleHasher.HashSize));
            pending.Advance(MerkleHasher.HashSize);
            if (level >= CachedFromLevel)
            {
                Cache(level, index, node);
            }
            if ((index & 1) == 0)
            {
                node.CopyTo(_frontier[level]);
                break;
            }

            MerkleHasher.Node(_frontier[level], node, node);
            index >>= 1;
        }

        _count++;
    }

    /// <summary>Writes the staged nodes to the level files (no fsync; <see cref="Flush"/> does that); read-only: keeps them in memory.</summary>
    public void WritePending()
    {
        if (_readOnly)
        {
            return;
        }

        for (var level = 0; level < MaxLevels; level++)
        {
            var pending = _pending[level];
            if (pending is null || pending.WrittenCount == 0)
            {
                continue;
            }

            var nodesAfter = _count >> level;
            var offset = (nodesAfter * MerkleHasher.HashSize) - pending.WrittenCount;
            RandomAccess.Write(Handle(level), pending.WrittenSpan, offset);
            pending.ResetWrittenCount();
        }
    }

    /// <summary>fsyncs every level file that holds nodes, and the tree directory.</summary>
    public void Flush(long size)
    {
        for (var level = 0; level < MaxLevels && (size >> level) > 0; level++)
        {
            RandomAccess.FlushToDisk(Handle(level));
        }

        DurableFile.FsyncDirectory(_dir);
    }

    public void ReadNode(int level, long index, Span<byte> destination)
    {
        if (level >= CachedFromLevel && Volatile.Read(ref _cache[level]) is { } cache && (index + 1) * MerkleHasher.HashSize <= cache.Length)
        {
            cache.AsSpan((int)index * MerkleHasher.HashSize, MerkleHasher.HashSize).CopyTo(destination);
            return;
        }

        if (_readOnly && index >= _fileLeaves >> level)
        {
            var at = (index - (_fileLeaves >> level)) * MerkleHasher.HashSize;
            if (_pending[level] is not { } memory || at + MerkleHasher.HashSize > memory.WrittenCount)
            {
                throw new InvalidDataException($"Merkle node (level {level}, index {index}) is past the {_count} entries of this read-only view.");
            }

            memory.WrittenSpan.Slice((int)at, MerkleHasher.HashSize).CopyTo(destination);
            return;
        }

        var read = RandomAccess.Read(Handle(level), destination[..MerkleHasher.HashSize], index * MerkleHasher.HashSize);
        if (read != MerkleHasher.HashSize)
        {
            throw new InvalidDataException($"Stored Merkle node (level {level}, index {index}) is missing from {LevelPath(level)}.");
        }
    }

    public void Dispose()
    {
        foreach (var f in _files)
        {
            f?.Dispose();
        }
    }

    /// <summary>Stores node <paramref name="index"/> of a cached level; readers only ask for nodes published after this write.</summary>
    private void Cache(int level, long index, ReadOnlySpan<byte> node)
    {
        var cache = _cache[level];
        var needed = (index + 1) * MerkleHasher.HashSize;
        if (cache is null || needed > cache.Length)
        {
            var grown = new byte[Math.Max(needed * 2, 64 * MerkleHasher.HashSize)];
            cache?.CopyTo(grown, 0);
            cache = grown;
            node.CopyTo(cache.AsSpan((int)index * MerkleHasher.HashSize));
            Volatile.Write(ref _cache[level], cache);
            return;
        }

        node.CopyTo(cache.AsSpan((int)index * MerkleHasher.HashSize));
    }

    private SafeFileHandle Handle(int level)
    {
        var h = Volatile.Read(ref _files[level]);
        if (h is not null)
        {
            return h;
        }

        lock (_openLock)
        {
            // Read-only: a share mode that does not conflict with the writer's (on Unix .NET takes a shared flock for both).
            return _files[level] ??= _readOnly
                ? File.OpenHandle(LevelPath(level), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete)
                : File.OpenHandle(LevelPath(level), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
        }
    }
}
