namespace BindProxy.Hosting;

/// <summary>The configuration to watch for edits; absent in quick mode, where routes come from the command line.</summary>
internal sealed record ReloadSource(IConfiguration? Configuration);
