using NetTune.IoUring;
using Xunit;

namespace NetTune.DataPlane.Tests;

/// <summary>The ring's submission and completion accounting against the real kernel.</summary>
public unsafe class RingTests
{
    [Theory, InlineData(true), InlineData(false)]
    public void SqesTheKernelLeftBehindGoWithTheNextEnter(bool defer)
    {
        // Without SUBMIT_ALL the kernel stops at an SQE that fails to start and leaves the rest in the ring.
        using var ring = Ring.Create(8, 16, preferSingleIssuer: defer, submitAll: false);
        Queue(ring, opcode: 255, userData: 1);
        Queue(ring, (byte)IoUringOp.Nop, 2);
        Queue(ring, (byte)IoUringOp.Nop, 3);
        ring.SubmitAndWait(0, -1);
        Assert.Equal(2, ring.PendingSubmissions);
        // Nothing new is queued: the two NOPs must still reach the kernel.
        ring.SubmitAndWait(0, -1);
        Assert.Equal(0, ring.PendingSubmissions);
        var seen = new List<(ulong, int)>();
        for (int i = 0; i < 5 && seen.Count < 3; i++)
        {
            while (ring.TryPeek(out var cqe)) { ring.Advance(); seen.Add((cqe.UserData, cqe.Res)); }
            if (seen.Count < 3) ring.SubmitAndWait(1, 100);
        }
        Assert.Equal([(1UL, -Libc.EINVAL), (2UL, 0), (3UL, 0)], seen.OrderBy(c => c.Item1));
    }

    [Theory, InlineData(true), InlineData(false)]
    public void CompletionsThatOverflowedTheCqRingAreFlushed(bool defer)
    {
        using var ring = Ring.Create(4, 8, preferSingleIssuer: defer);
        // 20 completions for a CQ ring of 8, none reaped meanwhile: the kernel keeps the rest aside.
        for (int round = 0; round < 5; round++)
        {
            for (int i = 0; i < 4; i++) Queue(ring, (byte)IoUringOp.Nop, (ulong)(round * 4 + i));
            ring.SubmitAndWait(0, -1);
        }
        Assert.True(ring.CqOverflowed);
        int reaped = 0;
        for (int k = 0; k < 5; k++)
        {
            while (ring.TryPeek(out _)) { ring.Advance(); reaped++; }
            // Nothing to submit and no wait: only the overflow flag says an enter is needed.
            ring.SubmitAndWait(0, -1);
        }
        Assert.Equal(20, reaped);
        Assert.False(ring.CqOverflowed);
    }

    private static void Queue(Ring ring, byte opcode, ulong userData)
    {
        var sqe = ring.TryGetSqe();
        Assert.True(sqe != null);
        sqe->Opcode = (IoUringOp)opcode;
        sqe->UserData = userData;
    }
}
