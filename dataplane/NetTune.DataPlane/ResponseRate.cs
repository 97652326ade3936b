namespace NetTune.DataPlane;

/// <summary>
/// The minimum data rate of a response, as Kestrel's MinResponseDataRate: a response that waits on its client must
/// see the client take (acknowledge) at least the minimum rate's worth of bytes in every period of such waiting, or
/// the connection is reset. The first period is the grace; each later one is measured on its own, so bytes a client
/// took at once into a large receive buffer buy it one period, not hours. A reader that takes a byte a minute thus
/// cannot hold a connection, its session and the kernel's send buffer for ever, which a timeout counted between
/// progress events allows. Pure: the worker's once-a-second scan passes the clock and the bytes the kernel says the
/// peer acknowledged.
/// </summary>
internal struct ResponseRateWindow
{
    private bool _open;
    private long _lastMs, _countedMs, _baseBytes;

    /// <summary>The session waits for the client's next request: the next response starts afresh.</summary>
    public void Reset() => _open = false;

    /// <summary>The session waits on someone else (an upstream): that time is not the client's.</summary>
    public void Pause(long nowMs) => _lastMs = nowMs;

    /// <summary>
    /// The session waits for the client to take response bytes: true when a whole period of such waiting saw fewer
    /// than <paramref name="bytesPerSecond"/> per second acknowledged.
    /// </summary>
    public bool Below(long ackedBytes, long nowMs, long bytesPerSecond, long periodMs)
    {
        if (!_open || ackedBytes < _baseBytes)
        {
            _open = true;
            _lastMs = nowMs;
            _countedMs = 0;
            _baseBytes = ackedBytes;
            return false;
        }
        _countedMs += nowMs - _lastMs;
        _lastMs = nowMs;
        if (_countedMs < periodMs) return false;
        if ((ackedBytes - _baseBytes) * 1000 < bytesPerSecond * _countedMs) return true;
        _countedMs = 0;
        _baseBytes = ackedBytes;
        return false;
    }
}
