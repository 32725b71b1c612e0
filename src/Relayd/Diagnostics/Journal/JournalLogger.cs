using System.Buffers;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Relayd.Protocol;
using Relayd.Protocol.V1;

namespace Relayd.Diagnostics.Journal;

/// <summary>
/// One category's logger: turns an entry into journal fields (<c>PRIORITY</c>, <c>SYSLOG_IDENTIFIER=relayd</c>,
/// <c>MESSAGE_ID</c>, <c>RELAYD_EVENT</c>, <c>RELAYD_EVENT_ID</c>, the <c>RELAYD_*</c> fields of
/// <see cref="JournalFields"/> found in a <c>[LoggerMessage]</c>'s state, and <c>MESSAGE</c>) and hands the datagram
/// to the shared <see cref="JournalSink"/>. The entry is built in a pooled buffer; scopes are not recorded.
/// </summary>
internal sealed class JournalLogger : ILogger
{
    private readonly JournalSink _sink;

    // MESSAGE_ID and RELAYD_EVENT name relayd's own events (ids from EventIds); the framework's few lines
    // (Microsoft.Hosting.*) keep their text and priority only.
    private readonly bool _isRelayd;

    public JournalLogger(string category, JournalSink sink)
    {
        _sink = sink;
        _isRelayd = category.StartsWith("relayd", StringComparison.OrdinalIgnoreCase);
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (!IsEnabled(logLevel))
        {
            return;
        }

        string message = WithException(formatter(state, exception), exception);
        int priority = SyslogPriority(logLevel);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(_sink.Options.MaxEntryBytes);
        try
        {
            var entry = new JournalEntryWriter(buffer.AsSpan(0, _sink.Options.MaxEntryBytes));
            entry.Add("PRIORITY"u8, priority);
            entry.AddAscii("SYSLOG_IDENTIFIER"u8, "relayd"u8);
            if (_isRelayd && eventId.Id != 0)
            {
                entry.AddAscii("MESSAGE_ID"u8, JournalMessageIds.Utf8Of(eventId.Id));
                entry.Add("RELAYD_EVENT_ID"u8, eventId.Id);
                if (eventId.Name is { } name)
                {
                    entry.Add("RELAYD_EVENT"u8, name);
                }
            }

            if (state is IReadOnlyList<KeyValuePair<string, object?>> fields)
            {
                AddStructuredFields(ref entry, fields);
            }

            entry.AddMessage(message);
            _sink.Send(entry.Written, priority, message);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>syslog(3) levels, as journald and systemd's own console format use them.</summary>
    internal static int SyslogPriority(LogLevel level) => level switch
    {
        LogLevel.Critical => 2, // LOG_CRIT
        LogLevel.Error => 3, // LOG_ERR
        LogLevel.Warning => 4, // LOG_WARNING
        LogLevel.Information => 6, // LOG_INFO
        _ => 7, // LOG_DEBUG: Debug and Trace
    };

    private string WithException(string message, Exception? exception) => exception switch
    {
        null => message,
        _ when _sink.Options.IncludeStackTraces => $"{message}\n{exception}",
        _ => $"{message}: {exception.GetType().FullName}: {exception.Message}",
    };

    /// <summary>The RELAYD_* fields; a partner named only as a recipient is also the entry's RELAYD_PARTNER.</summary>
    private static void AddStructuredFields(ref JournalEntryWriter entry, IReadOnlyList<KeyValuePair<string, object?>> fields)
    {
        string? partner = null;
        string? recipient = null;
        for (int i = 0; i < fields.Count; i++)
        {
            (string key, object? value) = fields[i];
            if (value is null)
            {
                continue;
            }

            switch (JournalFields.Of(key))
            {
                case JournalField.Partner:
                    partner ??= Text(value);
                    break;
                case JournalField.RecipientPartner:
                    recipient ??= Text(value);
                    break;
                case JournalField.Session:
                    entry.Add(JournalFields.Session, Text(value));
                    break;
                case JournalField.MessageId:
                    entry.Add(JournalFields.MessageId, Hex(value));
                    break;
                case JournalField.ErrorCode:
                    entry.Add(JournalFields.ErrorCode, value is ErrorCode code ? ProtoNames.Of(code) : Text(value));
                    break;
                case JournalField.Remote:
                    entry.Add(JournalFields.Remote, Text(value));
                    break;
                case JournalField.None:
                    break;
            }
        }

        if ((partner ?? recipient) is { } about)
        {
            entry.Add(JournalFields.Partner, about);
        }

        if (partner is not null && recipient is not null)
        {
            entry.Add(JournalFields.RecipientPartner, recipient);
        }
    }

    private static string Text(object value) => value switch
    {
        string text => text,
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    /// <summary>A message id as lowercase hex: ids come as bytes, a Guid, an integer, or text that already is hex.</summary>
    private static string Hex(object value) => value switch
    {
        byte[] bytes => Convert.ToHexStringLower(bytes),
        ReadOnlyMemory<byte> memory => Convert.ToHexStringLower(memory.Span),
        Memory<byte> memory => Convert.ToHexStringLower(memory.Span),
        Guid guid => guid.ToString("N", CultureInfo.InvariantCulture),
        ulong or long or uint or int or UInt128 => ((IFormattable)value).ToString("x", CultureInfo.InvariantCulture),
        _ => Text(value).ToLowerInvariant(),
    };
}
