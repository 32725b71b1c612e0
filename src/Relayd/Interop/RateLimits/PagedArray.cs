namespace Relayd.Interop.RateLimits;

/// <summary>
/// A fixed-length array allocated a page at a time, on first use: a relay that sees few senders (a test, a small
/// deployment) holds only the pages it touched, and the bound is the full length. Pages are published with a CAS;
/// an element is only read or written under its owner's synchronisation.
/// </summary>
internal sealed class PagedArray<T>
    where T : struct
{
    private const int PageShift = 12;
    private const int PageSize = 1 << PageShift;

    private readonly T[]?[] _pages;
    private int _allocatedPages;

    public PagedArray(long length)
    {
        Length = length;
        _pages = new T[]?[(length + PageSize - 1) >> PageShift];
    }

    public long Length { get; }

    /// <summary>Pages allocated so far (of <see cref="PageSize"/> elements).</summary>
    public int AllocatedPages => Volatile.Read(ref _allocatedPages);

    public static int ElementsPerPage => PageSize;

    public ref T this[long index]
    {
        get
        {
            T[] page = Volatile.Read(ref _pages[index >> PageShift]) ?? Allocate(index >> PageShift);
            return ref page[index & (PageSize - 1)];
        }
    }

    /// <summary>Zeroes every allocated page (the caller keeps readers away, or accepts them reading zeros).</summary>
    public void Clear()
    {
        foreach (T[]? page in _pages)
        {
            if (page is not null)
            {
                Array.Clear(page);
            }
        }
    }

    private T[] Allocate(long pageIndex)
    {
        var page = new T[PageSize];
        T[]? raced = Interlocked.CompareExchange(ref _pages[pageIndex], page, null);
        if (raced is not null)
        {
            return raced;
        }

        Interlocked.Increment(ref _allocatedPages);
        return page;
    }
}
