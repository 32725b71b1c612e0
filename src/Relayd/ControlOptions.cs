namespace Relayd;

/// <summary>The admin control socket <c>relayd ctl</c> talks to. The <c>[control]</c> table of the config.</summary>
public sealed class ControlOptions
{
    /// <summary>Where an installed relay puts its control socket (systemd's <c>RuntimeDirectory=relayd</c> creates the directory).</summary>
    public const string DefaultSocketPath = "/run/relayd/control.sock";

    private string _socketPath = DefaultSocketPath;
    private string? _group;

    /// <summary>
    /// Path of the unix stream socket (mode 0660), created at start and removed at stop. Its directory must exist: when
    /// it does not, the relay runs without a control socket and logs why. Defaults to "/run/relayd/control.sock".
    /// </summary>
    public string SocketPath
    {
        get => _socketPath;
        set => _socketPath = string.IsNullOrWhiteSpace(value) ? throw new ArgumentException("the control socket path must not be empty", nameof(value)) : value;
    }

    /// <summary>
    /// A group whose members may use the socket besides root and the relay's own user (checked from the peer's
    /// credentials, primary and supplementary groups); the socket file is given this group. Null: nobody else. Defaults to null.
    /// </summary>
    public string? Group
    {
        get => _group;
        set => _group = value is null || PartnerOptions.IsValidId(value.ToLowerInvariant())
            ? value
            : throw new ArgumentOutOfRangeException(nameof(value), value, $"'{value}' is not a group name (letters, digits, '.', '_' and '-', at most 63)");
    }
}
