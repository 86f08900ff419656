using BindProxy.Addressing;
using BindProxy.Configuration;
using BindProxy.Interception;

namespace BindProxy.Tests.Interception;

public sealed class InterceptionRulesetTests
{
    [Fact]
    public void The_table_holds_a_port_set_and_one_redirect_per_family_for_the_selected_group()
    {
        var route = new InterceptedRoute("exec", new InterceptSettings(PortSet.Of(9092, 9093), new InterceptSelector.Cgroup("/sys/fs/cgroup/unified/user.slice/bindproxy-42", 2)), 40001, 40002);
        var text = InterceptionRuleset.Table("bindproxy_42", [route]);
        Assert.Equal("""
            table inet bindproxy_42 {}
            delete table inet bindproxy_42
            table inet bindproxy_42 {
            	set ports_exec {
            		type inet_service
            		flags interval
            		auto-merge
            		elements = { 9092-9093 }
            	}
            	chain output {
            		type nat hook output priority -100; policy accept;
            		meta nfproto ipv4 socket cgroupv2 level 2 "unified/user.slice/bindproxy-42" tcp dport @ports_exec redirect to :40001
            		meta nfproto ipv6 socket cgroupv2 level 2 "unified/user.slice/bindproxy-42" tcp dport @ports_exec redirect to :40002
            	}
            }

            """, text);
    }

    [Fact]
    public void A_uid_selector_matches_the_socket_owner_and_a_missing_family_gets_no_rule()
    {
        var route = new InterceptedRoute("kafka/a b", new InterceptSettings(PortSet.Of(9092), new InterceptSelector.Uid(1000)), 40001, null);
        var text = InterceptionRuleset.Table("bindproxy_7", [route]);
        Assert.Contains("meta nfproto ipv4 meta skuid 1000 tcp dport @ports_kafka_a_b redirect to :40001", text, StringComparison.Ordinal);
        Assert.DoesNotContain("ipv6", text, StringComparison.Ordinal);
        Assert.Equal("add element inet bindproxy_7 ports_kafka_a_b { 9093 }", InterceptionRuleset.AddPorts("bindproxy_7", "kafka/a b", PortSet.Of(9093)));
    }

    [Fact]
    public void Proxy_tables_are_found_by_name_with_their_pid()
    {
        var tables = InterceptionRuleset.ProxyTables("table inet filter\ntable inet bindproxy_123\ntable ip bindproxy_9\ntable inet bindproxy_x\n");
        Assert.Equal([("bindproxy_123", 123)], tables);
    }
}
