using BindProxy.Transport;

namespace BindProxy.Tests.Transport;

public sealed class TransportOptionsTests
{
    [Fact]
    public void Pipe_options_are_shared_per_settings_and_follow_a_copy_with_other_settings()
    {
        var options = new TransportOptions { MaxBufferedBytes = 1024 * 1024 };
        Assert.Same(options.PipeOptions, options.PipeOptions);
        Assert.Equal(1024 * 1024, options.PipeOptions.PauseWriterThreshold);

        var kafka = options with { MaxBufferedBytes = 100 * 1024 * 1024 };
        Assert.Equal(100 * 1024 * 1024, kafka.PipeOptions.PauseWriterThreshold);
        Assert.Equal(50 * 1024 * 1024, kafka.PipeOptions.ResumeWriterThreshold);
        Assert.Equal(1024 * 1024, options.PipeOptions.PauseWriterThreshold);
    }
}
