using NetTune.IoUring;

namespace NetTune.DataPlane;

/// <summary>Queued output as a window [start, end) over an iovec array, consumed as the kernel takes bytes.</summary>
internal static unsafe class IoVecs
{
    /// <summary>Drops <paramref name="sent"/> bytes from the front of the window; true when nothing is left in it.</summary>
    public static bool Consume(IoVec* iov, ref int start, int end, long sent)
    {
        while (sent > 0 && start < end)
        {
            ref var v = ref iov[start];
            if ((ulong)sent >= v.Length)
            {
                sent -= (long)v.Length;
                start++;
            }
            else
            {
                v.Base = (byte*)v.Base + sent;
                v.Length -= (nuint)sent;
                sent = 0;
            }
        }
        return start == end;
    }
}
