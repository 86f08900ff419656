using BindProxy.Configuration;

namespace BindProxy.Interception;

/// <summary>One route's part of the interception table: what it selects and where its listeners are.</summary>
/// <param name="Ipv4Port">The route's listener port on 127.0.0.1 (IPv4 connections are redirected there); null: none.</param>
/// <param name="Ipv6Port">The route's listener port on [::1]; null: IPv6 connections are not redirected.</param>
internal sealed record InterceptedRoute(string Route, InterceptSettings Settings, int? Ipv4Port, int? Ipv6Port);
