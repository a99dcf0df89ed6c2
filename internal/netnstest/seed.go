package netnstest

import "strings"

// The example of seed 003 (the munin traffic_accounting plugin), shared by
// the collector and end-to-end tests: udp in place of tcp, so that a test can
// send exact traffic without a handshake.

// SeedAddrs are the addresses the seed rules and traffic use.
var SeedAddrs = []string{"192.0.2.1/24", "198.51.100.1/24", "2001:db8:f00d::1/64", "2001:db8:beef::1/64"}

// SeedNFT is the seed example in native nftables, in tables ip acct4 and
// ip6 acct6, with an untagged rule, a rule without a comment and a rule
// whose tag does not parse beside it.
const SeedNFT = `
table ip acct4 {
	chain in {
		type filter hook input priority 0; policy accept;
		ip saddr != 10.2.3.0/24 udp dport 22 counter comment "=unauthssh= Unauthorized SSH traffic received"
		ip daddr 192.0.2.1 udp dport 80 counter comment "=web4_down= Combined web traffic to/from local 80/443"
		ip daddr 192.0.2.1 udp dport 443 counter comment "=web4_down= dummy"
		ip daddr 192.0.2.1 counter comment "untagged, ignored"
		ip daddr 192.0.2.1 counter
		ip daddr 192.0.2.1 counter comment "=bad tag= not counted"
	}
	chain out {
		type filter hook output priority 0; policy accept;
		ip saddr 192.0.2.1 udp sport 80 counter comment "=web4_up= dummy"
		ip saddr 192.0.2.1 udp sport 443 counter comment "=web4_up= dummy"
	}
}
table ip6 acct6 {
	chain in {
		type filter hook input priority 0; policy accept;
		ip6 daddr 2001:db8:f00d::1 udp dport 80 counter comment "=web6_down= Web traffic to/from local port 80"
		ip6 daddr 2001:db8:f00d::1 udp dport 443 counter comment "=web6ssl_down= Web traffic to/from local port 443"
	}
	chain out {
		type filter hook output priority 0; policy accept;
		ip6 saddr 2001:db8:f00d::1 udp sport 80 counter comment "=web6_up= dummy"
		ip6 saddr 2001:db8:f00d::1 udp sport 443 counter comment "=web6ssl_up= dummy"
	}
}
`

// SeedXtables returns the seed example as commands of one iptables variant
// (v4 and v6: iptables-nft and ip6tables-nft, or the -legacy pair), in
// accounting chains jumped to from INPUT and OUTPUT as the seed does. So a
// packet between two local addresses is counted twice. Beside the seed's
// rules: =q_in= with quotes, a backslash and non-ASCII in its description,
// a tag too long to parse, and a rule without a comment.
func SeedXtables(v4, v6 string) [][]string {
	c := func(tool string, args ...string) []string { return append([]string{tool}, args...) }
	return [][]string{
		c(v4, "-N", "ACCT4"), c(v4, "-I", "INPUT", "1", "-j", "ACCT4"), c(v4, "-I", "OUTPUT", "1", "-j", "ACCT4"),
		c(v4, "-A", "ACCT4", "!", "-s", "10.2.3.0/24", "-p", "udp", "--dport", "22", "-m", "comment", "--comment", "=unauthssh= Unauthorized SSH traffic received"),
		c(v4, "-A", "ACCT4", "-d", "192.0.2.1", "-p", "udp", "--dport", "80", "-m", "comment", "--comment", "=web4_down= Combined web traffic to/from local 80/443"),
		c(v4, "-A", "ACCT4", "-s", "192.0.2.1", "-p", "udp", "--sport", "80", "-m", "comment", "--comment", "=web4_up= dummy"),
		c(v4, "-A", "ACCT4", "-d", "192.0.2.1", "-p", "udp", "--dport", "443", "-m", "comment", "--comment", "=web4_down= dummy"),
		c(v4, "-A", "ACCT4", "-s", "192.0.2.1", "-p", "udp", "--sport", "443", "-m", "comment", "--comment", "=web4_up= dummy"),
		c(v4, "-A", "ACCT4", "-d", "192.0.2.1", "-p", "udp", "--dport", "53", "-m", "comment", "--comment", `=q_in= say "hi" \ ünïcödé`),
		c(v4, "-A", "ACCT4", "-d", "192.0.2.1", "-m", "comment", "--comment", "=toolong"+strings.Repeat("g", 60)+"= x"),
		c(v4, "-A", "ACCT4", "-d", "192.0.2.1"),
		c(v6, "-N", "ACCT6"), c(v6, "-I", "INPUT", "1", "-j", "ACCT6"), c(v6, "-I", "OUTPUT", "1", "-j", "ACCT6"),
		c(v6, "-A", "ACCT6", "-d", "2001:db8:f00d::1", "-p", "udp", "--dport", "80", "-m", "comment", "--comment", "=web6_down= Web traffic to/from local port 80"),
		c(v6, "-A", "ACCT6", "-s", "2001:db8:f00d::1", "-p", "udp", "--sport", "80", "-m", "comment", "--comment", "=web6_up= dummy"),
		c(v6, "-A", "ACCT6", "-d", "2001:db8:f00d::1", "-p", "udp", "--dport", "443", "-m", "comment", "--comment", "=web6ssl_down= Web traffic to/from local port 443"),
		c(v6, "-A", "ACCT6", "-s", "2001:db8:f00d::1", "-p", "udp", "--sport", "443", "-m", "comment", "--comment", "=web6ssl_up= dummy"),
	}
}

// SendSeedTraffic sends traffic that each seed tag token sees a known part
// of, and returns it per token, as a rule that sees each packet once counts
// it. The native rules count =q_in= traffic under no tag.
func (ns *NS) SendSeedTraffic() map[string]Counter {
	c := func(n int, b uint64) Counter { return Counter{Packets: uint64(n), Bytes: b} }
	return map[string]Counter{
		"=unauthssh=": c(3, ns.SendUDP("198.51.100.1:40022", "192.0.2.1:22", 100, 3)),
		"=web4_down=": c(5, ns.SendUDP("198.51.100.1:40080", "192.0.2.1:80", 200, 5)).
			Add(c(7, ns.SendUDP("198.51.100.1:40443", "192.0.2.1:443", 300, 7))),
		"=web4_up=": c(4, ns.SendUDP("192.0.2.1:80", "198.51.100.1:40080", 1000, 4)).
			Add(c(2, ns.SendUDP("192.0.2.1:443", "198.51.100.1:40443", 10, 2))),
		"=web6_down=":    c(6, ns.SendUDP("[2001:db8:beef::1]:40080", "[2001:db8:f00d::1]:80", 50, 6)),
		"=web6_up=":      c(1, ns.SendUDP("[2001:db8:f00d::1]:80", "[2001:db8:beef::1]:40080", 500, 1)),
		"=web6ssl_down=": c(9, ns.SendUDP("[2001:db8:beef::1]:40443", "[2001:db8:f00d::1]:443", 1, 9)),
		"=web6ssl_up=":   c(8, ns.SendUDP("[2001:db8:f00d::1]:443", "[2001:db8:beef::1]:40443", 1200, 8)),
		"=q_in=":         c(2, ns.SendUDP("198.51.100.1:40053", "192.0.2.1:53", 20, 2)),
	}
}

// SeedYAML is the seed example as a rules.yaml for the exporter to install.
const SeedYAML = `
accounting:
  - tag: web4
    description: Combined web traffic to/from local 80/443
    local: [192.0.2.1]
    protocol: udp
    ports: [80, 443]
  - tag: unauthssh
    description: Unauthorized SSH traffic received
    direction: in
    remote_except: [10.2.3.0/24]
    protocol: udp
    ports: [22]
    family: ipv4
  - tag: web6
    local: [2001:db8:f00d::1]
    protocol: udp
    ports: [80]
  - tag: web6ssl
    local: [2001:db8:f00d::1]
    protocol: udp
    ports: [443]
`
