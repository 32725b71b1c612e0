using Relayd.Protocol.V1;

namespace Relayd.Routing;

/// <summary>One message's fate, on its way back to the sender partner.</summary>
internal readonly record struct ReceiptItem(UInt128 MessageId, ReceiptStatus Status, ErrorCode Code);
