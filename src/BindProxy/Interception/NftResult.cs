namespace BindProxy.Interception;

/// <summary>What one nft command run gave: success, its output, and nft's own error text.</summary>
internal sealed record NftResult(bool Ok, string Output, string Error);
