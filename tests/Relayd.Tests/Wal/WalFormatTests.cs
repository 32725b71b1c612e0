using System.Buffers.Binary;
using System.IO.Hashing;
using Relayd.Tests.Infrastructure;
using Relayd.Wal;

namespace Relayd.Tests.Wal;

/// <summary>The on-disk format (docs/wal.md): segment files, record header, alignment and checksums.</summary>
public sealed class WalFormatTests : IDisposable
{
    private readonly TempWalDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Segments_are_named_by_sixteen_hex_digits_and_the_next_one_is_pre_written_with_zeros_ahead_of_time()
    {
        using (WriteAheadLog log = WalTestKit.Open(_dir.Path))
        {
            await WaitUntil(() => File.Exists(_dir.Segment(2)));
            Assert.Equal([1UL], log.Segments);
        }

        foreach (ulong number in new ulong[] { 1, 2 })
        {
            string path = _dir.Segment(number);
            byte[] content = await File.ReadAllBytesAsync(path, TestContext.Current.CancellationToken);
            Assert.Equal(WalTestKit.SmallSegment, content.Length);
            Assert.DoesNotContain(content, b => b != 0);

            // Really written, not sparse or merely reserved: every block is allocated.
            ExternalProcess.Result stat = await ExternalProcess.RunAsync("stat", ["-c", "%b %B", path]);
            long[] blocks = [.. stat.StandardOutput.Split(' ', StringSplitOptions.TrimEntries).Select(long.Parse)];
            Assert.True(blocks[0] * blocks[1] >= WalTestKit.SmallSegment, $"{path}: {stat.StandardOutput}");
        }

        Assert.Equal(["wal-0000000000000001.log", "wal-0000000000000002.log"], Directory.GetFiles(_dir.Path, "wal-*").Select(Path.GetFileName).Order());
    }

    [Fact]
    public async Task A_record_is_a_16_byte_header_then_its_payload_zero_padded_to_8_bytes_with_CRC_32C_checks()
    {
        byte[] payload = WalTestKit.Payload(7, 13);
        WalPosition position;
        using (WriteAheadLog log = WalTestKit.Open(_dir.Path))
        {
            position = (await WalTestKit.AppendAndCommitAsync(log, [(42, payload)]))[0];
        }

        byte[] file = await File.ReadAllBytesAsync(_dir.Segment(1), TestContext.Current.CancellationToken);
        Assert.Equal(new WalPosition(1, 0), position);
        Assert.Equal(new WalPosition(1, 32), WriteAheadLog.EndOf(position, payload.Length));
        Assert.Equal(13u, BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(0)));
        Assert.Equal(42, file[4]);
        Assert.Equal(0, file[5]);
        Assert.Equal(0, BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(6)));
        Assert.Equal(Crc32.HashToUInt32(Crc32ParameterSet.Crc32C, [42, .. payload]), BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(8)));
        Assert.Equal(Crc32.HashToUInt32(Crc32ParameterSet.Crc32C, file.AsSpan(0, 12)), BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(12)));
        Assert.Equal(payload, file[16..29]);
        Assert.DoesNotContain(file[29..], b => b != 0);
    }

    [Fact]
    public void The_checksum_is_CRC_32C_as_System_IO_Hashing_computes_it_for_any_length_and_split()
    {
        byte[] data = WalTestKit.Payload(3, 1000);
        for (int length = 0; length <= 100; length++)
        {
            uint expected = Crc32.HashToUInt32(Crc32ParameterSet.Crc32C, data.AsSpan(0, length));
            Assert.Equal(expected, Crc32C.Compute(data.AsSpan(0, length)));
            int split = length / 3;
            Assert.Equal(expected, Crc32C.Finish(Crc32C.Append(Crc32C.Append(Crc32C.Seed, data.AsSpan(0, split)), data.AsSpan(split, length - split))));
        }

        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));
    }

    [Fact]
    public void Positions_order_by_segment_then_offset_and_pack_into_a_ulong_that_orders_the_same()
    {
        WalPosition[] ordered = [new(1, 0), new(1, 8), new(1, 65_536), new(2, 0), new(uint.MaxValue, 16)];
        for (int i = 1; i < ordered.Length; i++)
        {
            Assert.True(ordered[i - 1] < ordered[i]);
            Assert.True(ordered[i - 1].ToUInt64() < ordered[i].ToUInt64());
            Assert.Equal(ordered[i], WalPosition.FromUInt64(ordered[i].ToUInt64()));
        }

        Assert.Throws<OverflowException>(() => new WalPosition(1UL << 32, 0).ToUInt64());
    }

    [Fact]
    public void A_header_of_zeros_reads_as_no_record_and_a_changed_header_byte_is_caught_before_the_length_is_trusted()
    {
        Assert.Equal(WalHeaderStatus.Empty, WalRecordHeader.TryRead(new byte[16], 1000, out _, out _, out _));

        byte[] header = new byte[16];
        WalRecordHeader.Write(header, 100, 9, 0x1234_5678);
        Assert.Equal(WalHeaderStatus.Valid, WalRecordHeader.TryRead(header, 1000, out int length, out byte type, out uint crc));
        Assert.Equal((100, 9, 0x1234_5678u), (length, type, crc));
        Assert.Equal(WalHeaderStatus.BadLength, WalRecordHeader.TryRead(header, 96, out _, out _, out _));
        for (int i = 0; i < 16; i++)
        {
            byte[] torn = (byte[])header.Clone();
            torn[i] ^= 0x01;
            Assert.Equal(WalHeaderStatus.BadCheck, WalRecordHeader.TryRead(torn, 1000, out _, out _, out _));
        }
    }

    [Fact]
    public async Task Committed_batches_go_around_the_page_cache_as_whole_pages_and_every_record_reads_back()
    {
        // O_DIRECT needs a filesystem that has it (ext4 and xfs do, tmpfs does not).
        string probe = Path.Combine(_dir.Path, "probe");
        File.WriteAllBytes(probe, []);
        using (Microsoft.Win32.SafeHandles.SafeFileHandle? direct = WalDirectWrite.TryOpenForWrites(probe, 0))
        {
            Assert.SkipWhen(direct is null, $"{_dir.Path} is on a filesystem without O_DIRECT");
        }

        File.Delete(probe);

        // Forty commits of odd sizes: almost every batch starts inside a page the previous one wrote, and must carry
        // that page's earlier records into its own whole-page write.
        List<(byte Type, byte[] Payload)> records = WalTestKit.Records(120, 600, seed: 11);
        WalPosition seenEnd;
        using (WriteAheadLog log = WalTestKit.Open(_dir.Path))
        {
            foreach ((byte Type, byte[] Payload)[] batch in records.Chunk(3))
            {
                await WalTestKit.AppendAndCommitAsync(log, batch);
            }

            seenEnd = log.AppendedEnd;
        }

        // Opening the log read segment 1 whole (the recovery scan), so its pages past the records may stay cached; the
        // pages the batches wrote must not be (a direct write drops them, a buffered one leaves them cached).
        Assert.Equal(1UL, seenEnd.Segment);
        ExternalProcess.Result cached = await ExternalProcess.RunAsync("fincore", ["--bytes", "--noheadings", "--output", "RES", _dir.Segment(1)]);
        long residentBytes = long.Parse(cached.StandardOutput.Trim(), System.Globalization.CultureInfo.InvariantCulture);
        long writtenPages = (seenEnd.Offset + 4095L) / 4096 * 4096;
        Assert.True(residentBytes <= WalTestKit.SmallSegment - writtenPages, $"{residentBytes} of the segment's {WalTestKit.SmallSegment} bytes are in the page cache after its first {writtenPages} bytes were written: the batches did not go around it (O_DIRECT)");

        using WriteAheadLog reopened = WalTestKit.OpenObserved(_dir.Path, out List<WalRecord> seen);
        WalTestKit.AssertSameRecords(records, seen);
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        for (int i = 0; i < 500 && !condition(); i++)
        {
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }

        Assert.True(condition());
    }
}
