using Relayd.Protocol.V1;
using Relayd.Routing;

namespace Relayd.Tests.Routing;

/// <summary>How the Hello declarations of a partner's connections combine into what the relay lets through to it.</summary>
public sealed class ReceiveDeclarationTests
{
    private static ReceiveDeclaration Hello(uint maxFrameBytes, params ContentKind[] kinds)
    {
        var hello = new Hello { MaxFrameBytes = maxFrameBytes };
        hello.AcceptedKinds.AddRange(kinds);
        return ReceiveDeclaration.FromHello(hello);
    }

    [Fact]
    public void A_Hello_that_declares_nothing_takes_every_kind_and_sets_no_frame_limit()
    {
        ReceiveDeclaration any = Hello(0);

        Assert.Same(ReceiveDeclaration.Any, any);
        Assert.True(any.Accepts((int)ContentKind.Video));
        Assert.True(any.Accepts(99)); // a kind this build does not know
        Assert.Equal(0, any.MaxFrameBytes);
    }

    [Fact]
    public void Connections_combine_to_the_kinds_all_of_them_take_and_the_smallest_frame_limit()
    {
        ReceiveDeclaration combined = ReceiveDeclaration.Combine([Hello(0, ContentKind.Text, ContentKind.Image), Hello(200_000, ContentKind.Text), Hello(300_000)]);

        Assert.True(combined.Accepts((int)ContentKind.Text));
        Assert.False(combined.Accepts((int)ContentKind.Image));
        Assert.False(combined.Accepts(99));
        Assert.Equal(200_000, combined.MaxFrameBytes);
    }

    [Fact]
    public void Connections_that_share_no_kind_take_nothing()
    {
        ReceiveDeclaration combined = ReceiveDeclaration.Combine([Hello(0, ContentKind.Text), Hello(0, ContentKind.Voice)]);

        Assert.False(combined.Accepts((int)ContentKind.Text));
        Assert.False(combined.Accepts((int)ContentKind.Voice));
        Assert.Equal("[]", ContentKinds.Names(combined.Kinds));
    }

    [Fact]
    public void Kinds_are_named_as_in_the_proto()
    {
        Assert.Equal("[CONTENT_KIND_TEXT, CONTENT_KIND_IMAGE]", ContentKinds.Names(ContentKinds.Mask([ContentKind.Image, ContentKind.Text])));
        Assert.Equal("content kind 42", ContentKinds.Name(42));
    }
}
