using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Har.Inference.Windowing;

/// <summary>The copy into a stream's buffer, fused with the NaN/infinity check.</summary>
internal static class FiniteCopy
{
    /// <summary>
    /// Copies <paramref name="source"/> and reports whether every value is finite: x − x is +0 (all bits
    /// clear) for finite x and NaN for NaN and ±infinity, so the bits of every x − x are OR-ed together
    /// and compared with zero once at the end (one subtraction and one OR per vector, no per-vector compare).
    /// </summary>
    public static unsafe bool CopyFinite(ReadOnlySpan<float> source, Span<float> destination)
    {
        ref var src = ref MemoryMarshal.GetReference(source);
        ref var dst = ref MemoryMarshal.GetReference(destination);
        var length = (nuint)source.Length;
        nuint i = 0;
        if (Vector512.IsHardwareAccelerated && length >= 16)
        {
            // One unaligned vector first, then aligned stores from the destination's next 64-byte boundary
            // (a store straddling two cache lines costs two; the overlap is copied twice, identically).
            var head = Vector512.LoadUnsafe(ref src);
            head.StoreUnsafe(ref dst);
            var bits = (head - head).AsUInt32();
            i = ((64 - ((nuint)Unsafe.AsPointer(ref dst) & 63)) & 63) / sizeof(float);
            for (; i + 16 <= length; i += 16)
            {
                var v = Vector512.LoadUnsafe(ref src, i);
                v.StoreUnsafe(ref dst, i);
                bits |= (v - v).AsUInt32();
            }

            if (i < length)
            {
                // The remainder as one vector ending at the end (overlapping values are copied twice, identically).
                var v = Vector512.LoadUnsafe(ref src, length - 16);
                v.StoreUnsafe(ref dst, length - 16);
                bits |= (v - v).AsUInt32();
            }

            return bits == Vector512<uint>.Zero;
        }

        if (Vector256.IsHardwareAccelerated && length >= 8)
        {
            var bits = Vector256<uint>.Zero;
            for (; i + 8 <= length; i += 8)
            {
                var v = Vector256.LoadUnsafe(ref src, i);
                v.StoreUnsafe(ref dst, i);
                bits |= (v - v).AsUInt32();
            }

            if (i < length)
            {
                var v = Vector256.LoadUnsafe(ref src, length - 8);
                v.StoreUnsafe(ref dst, length - 8);
                bits |= (v - v).AsUInt32();
            }

            return bits == Vector256<uint>.Zero;
        }

        var finite = true;
        for (; i < length; i++)
        {
            var x = Unsafe.Add(ref src, i);
            Unsafe.Add(ref dst, i) = x;
            finite &= float.IsFinite(x);
        }

        return finite;
    }

    public static int FirstNonFinite(ReadOnlySpan<float> frames)
    {
        for (var i = 0; i < frames.Length; i++)
        {
            if (!float.IsFinite(frames[i]))
            {
                return i;
            }
        }

        return -1;
    }
}
