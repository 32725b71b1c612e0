using Relayd.Diagnostics;
using Relayd.Protocol.Internal;
using Relayd.Routing;

namespace Relayd.Media;

/// <summary>Start-up: what an earlier run left in the spool.</summary>
internal sealed partial class MediaRouter
{
    /// <summary>Loads what an earlier run left in the spool: verified blobs are delivered, partial ones await a resume.</summary>
    private void Recover()
    {
        long nowMs = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        if (_spool.Scan() is not { } files)
        {
            return;
        }

        int blobs = 0;
        int partials = 0;
        foreach (SpooledFile file in files)
        {
            PartnerInfo? sender = file.Open is null ? null : _partners.Find(file.Open.SenderPartner);
            PartnerInfo? recipient = file.Open is null ? null : _partners.Find(file.Open.RecipientPartner);
            if (file.Open is null || sender is null || recipient is null || file.Length < 0 || file.Open.TransferId.Length != MediaChunkWire.TransferIdBytes)
            {
                RelayLog.MediaSpoolDiscarded(_logger, file.BasePath, "unreadable metadata, missing blob or partner no longer approved");
                DeleteFiles(file.BasePath);
                continue;
            }

            long expiresAt = file.Open.ExpiresAtMs != 0 ? file.Open.ExpiresAtMs
                : new DateTimeOffset(file.CreatedUtc).ToUnixTimeMilliseconds() + (long)_limits.DefaultRetention.TotalMilliseconds;
            if (expiresAt <= nowMs || (file.Complete && file.Length != (long)file.Open.TotalSize))
            {
                RelayLog.MediaSpoolDiscarded(_logger, file.BasePath, expiresAt <= nowMs ? "expired" : "blob size differs from the declared size");
                DeleteFiles(file.BasePath);
                continue;
            }

            UInt128 id = MediaChunkWire.ReadTransferId(file.Open.TransferId);
            var transfer = MediaTransfer.Recovered(id, file.Open, sender, recipient, file.BasePath, expiresAt, file.Complete, file.Length, _options.WindowBytes);
            MediaPartnerState from = StateOf(sender);
            from.Transfers[id] = transfer;
            from.SpoolBytes += transfer.TotalSize;
            if (file.Complete)
            {
                StateOf(recipient).Outbox.AddLast(transfer);
                blobs++;
            }
            else
            {
                from.OpenTransfers++;
                partials++;
            }
        }

        RelayLog.MediaRecovered(_logger, _spool.Location, blobs, partials);
    }
}
