using System.Net;
using System.Net.Sockets;
using Relayd.Protocol;
using Relayd.Tests.Functional;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Client;

/// <summary>
/// RelayClientOptions: the documented defaults, and Validate() refusing a missing or out-of-range option by its name
/// before the client touches the network.
/// </summary>
public sealed class RelayClientOptionsTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public RelayClientOptionsTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public void Default_holds_the_documented_defaults()
    {
        RelayClientOptions options = RelayClientOptions.Default;

        Assert.Equal("", options.Host);
        Assert.Equal(7443, options.Port);
        Assert.Same(RelayClientTlsOptions.Default, options.Tls);
        Assert.Null(options.Tls.ClientCertificate);
        Assert.Null(options.Tls.RelayRoots);
        Assert.Null(options.Tls.TargetHost);
        Assert.Empty(options.AcceptedKinds);
        Assert.Equal(2 * 1024 * 1024, options.MaxFrameBytes);
        Assert.Equal(TimeSpan.FromSeconds(10), options.ConnectTimeout);
        Assert.Equal(8192, options.DeliveryBufferCapacity);
        Assert.True(options.ReceiveReceipts);
        Assert.Equal(65536, options.ReceiptBufferCapacity);
        Assert.Null(options.OnRelayError);
        Assert.Equal("Relayd.Protocol/1", options.Agent);
    }

    [Fact]
    public void Validate_accepts_complete_options_and_leaves_the_frame_minimum_to_the_relay()
    {
        Complete().Validate();
        // The relay answers a MaxFrameBytes below its 128 KiB minimum with an error code (HelloTests); the client
        // does not pre-empt it.
        (Complete() with { MaxFrameBytes = 64 * 1024 }).Validate();
        (Complete() with { ConnectTimeout = Timeout.InfiniteTimeSpan }).Validate();
    }

    [Theory]
    [InlineData("Host")]
    [InlineData("Host", " ")]
    [InlineData("Port")]
    [InlineData("Port", "65536")]
    [InlineData("Tls")]
    [InlineData("Tls.ClientCertificate")]
    [InlineData("AcceptedKinds")]
    [InlineData("MaxFrameBytes")]
    [InlineData("ConnectTimeout")]
    [InlineData("ConnectTimeout", "-00:00:01")]
    [InlineData("DeliveryBufferCapacity")]
    [InlineData("ReceiptBufferCapacity")]
    [InlineData("Agent")]
    public void Validate_refuses_an_invalid_option_naming_it(string option, string? value = null)
    {
        RelayClientOptions broken = Break(Complete(), option, value);

        ArgumentException refused = Assert.ThrowsAny<ArgumentException>(broken.Validate);

        Assert.Equal(option, refused.ParamName);
        Assert.StartsWith($"RelayClientOptions.{option} ", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConnectAsync_refuses_invalid_options_before_it_connects()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        RelayClientOptions broken = Complete() with { Port = ((IPEndPoint)listener.LocalEndpoint).Port, ConnectTimeout = TimeSpan.FromSeconds(2), DeliveryBufferCapacity = 0 };

        ArgumentException refused = await Assert.ThrowsAnyAsync<ArgumentException>(() => RelayClient.ConnectAsync(broken, TestContext.Current.CancellationToken));

        Assert.Equal("DeliveryBufferCapacity", refused.ParamName);
        Assert.False(listener.Pending(), "the client opened a connection before validating its options");
    }

    private RelayClientOptions Complete() =>
        RelayClientOptions.Default with { Host = "localhost", Tls = new() { ClientCertificate = _pki.Partner("alpha"), RelayRoots = [_pki.Ca] } };

    private static RelayClientOptions Break(RelayClientOptions options, string option, string? value) => option switch
    {
        "Host" => options with { Host = value ?? "" },
        "Port" => options with { Port = int.Parse(value ?? "0", System.Globalization.CultureInfo.InvariantCulture) },
        "Tls" => options with { Tls = null! },
        "Tls.ClientCertificate" => options with { Tls = options.Tls with { ClientCertificate = null } },
        "AcceptedKinds" => options with { AcceptedKinds = null! },
        "MaxFrameBytes" => options with { MaxFrameBytes = 0 },
        "ConnectTimeout" => options with { ConnectTimeout = value is null ? TimeSpan.Zero : TimeSpan.Parse(value, System.Globalization.CultureInfo.InvariantCulture) },
        "DeliveryBufferCapacity" => options with { DeliveryBufferCapacity = 0 },
        "ReceiptBufferCapacity" => options with { ReceiptBufferCapacity = -1 },
        "Agent" => options with { Agent = null! },
        _ => throw new ArgumentOutOfRangeException(nameof(option), option, "no way to break this option"),
    };
}
