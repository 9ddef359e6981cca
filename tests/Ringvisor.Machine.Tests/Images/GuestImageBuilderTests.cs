using Ringvisor.Machine.Images;

namespace Ringvisor.Machine.Tests.Images;

public sealed class GuestImageBuilderTests
{
    [Fact]
    public void ParseKernelDependency_AptCacheDependsOutput_ReturnsVersionedKernelPackage()
    {
        const string Output = "linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-56-cloud-amd64\n";

        Assert.Equal("linux-image-6.1.0-56-cloud-amd64", GuestImageBuilder.ParseKernelDependency(Output));
    }

    [Fact]
    public void ParseKernelDependency_NoLinuxImageDependency_ReturnsNull()
    {
        Assert.Null(GuestImageBuilder.ParseKernelDependency("linux-image-cloud-amd64\n  Recommends: foo\n"));
    }
}
