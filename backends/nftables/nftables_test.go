package nftables

import (
	"context"
	"strings"
	"testing"

	"github.com/ipacct/ipacct_exporter/backends"
	"github.com/ipacct/ipacct_exporter/internal/netnstest"
	"github.com/ipacct/ipacct_exporter/tag"
)

// seedRuleset is seed 003's example in native nftables, with udp in place of
// tcp so that the test can send exact traffic without a handshake.
const seedRuleset = `
table ip acct4 {
	chain in {
		type filter hook input priority 0; policy accept;
		ip saddr != 10.2.3.0/24 udp dport 22 counter comment "=unauthssh= Unauthorized SSH traffic received"
		ip daddr 192.0.2.1 udp dport 80 counter comment "=web4_down= Combined web traffic to/from local 80/443"
		ip daddr 192.0.2.1 udp dport 443 counter comment "=web4_down= dummy"
		ip daddr 192.0.2.1 counter comment "not a tag"
		ip daddr 192.0.2.1 counter
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

// seedTraffic sends traffic that each seed rule sees a known part of, and
// returns the bytes sent per tag token.
func seedTraffic(ns *netnstest.NS) map[string]netnstest.Counter {
	c := func(n int, b uint64) netnstest.Counter { return netnstest.Counter{Packets: uint64(n), Bytes: b} }
	want := map[string]netnstest.Counter{}
	want["=unauthssh="] = c(3, ns.SendUDP("198.51.100.1:40022", "192.0.2.1:22", 100, 3))
	want["=web4_down="] = c(5, ns.SendUDP("198.51.100.1:40080", "192.0.2.1:80", 200, 5)).
		Add(c(7, ns.SendUDP("198.51.100.1:40443", "192.0.2.1:443", 300, 7)))
	want["=web4_up="] = c(4, ns.SendUDP("192.0.2.1:80", "198.51.100.1:40080", 1000, 4)).
		Add(c(2, ns.SendUDP("192.0.2.1:443", "198.51.100.1:40443", 10, 2)))
	want["=web6_down="] = c(6, ns.SendUDP("[2001:db8:beef::1]:40080", "[2001:db8:f00d::1]:80", 50, 6))
	want["=web6_up="] = c(1, ns.SendUDP("[2001:db8:f00d::1]:80", "[2001:db8:beef::1]:40080", 500, 1))
	want["=web6ssl_down="] = c(9, ns.SendUDP("[2001:db8:beef::1]:40443", "[2001:db8:f00d::1]:443", 1, 9))
	want["=web6ssl_up="] = c(8, ns.SendUDP("[2001:db8:f00d::1]:443", "[2001:db8:beef::1]:40443", 1200, 8))
	return want
}

var seedAddrs = []string{"192.0.2.1/24", "198.51.100.1/24", "2001:db8:f00d::1/64", "2001:db8:beef::1/64"}

// byToken sums a reading's records per tag token, as the comment spelled it.
func byToken(t *testing.T, r backends.Reading) map[string]netnstest.Counter {
	t.Helper()
	sums := map[string]netnstest.Counter{}
	for _, rec := range r.Records {
		tok := "=" + rec.Tag + map[tag.Direction]string{tag.In: "_down", tag.Out: "_up", tag.None: ""}[rec.Direction] + "="
		sums[tok] = sums[tok].Add(netnstest.Counter{Packets: rec.Packets, Bytes: rec.Bytes})
	}
	return sums
}

func compare(t *testing.T, what string, got, want map[string]netnstest.Counter) {
	t.Helper()
	for tok, w := range want {
		if got[tok] != w {
			t.Errorf("%s %s: got %+v, want %+v", what, tok, got[tok], w)
		}
	}
	for tok := range got {
		if _, ok := want[tok]; !ok {
			t.Errorf("%s: unexpected %s %+v", what, tok, got[tok])
		}
	}
}

func TestSeedRulesNative(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, seedAddrs...)
	ns.NFT(seedRuleset)
	sent := seedTraffic(ns)

	r, err := New(Options{NetNS: ns.Path()}).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := byToken(t, r)
	compare(t, "against traffic sent", got, sent)
	compare(t, "against nft -j list ruleset", got, ns.NFTCounters())
	if len(r.Invalid) != 0 {
		t.Errorf("invalid comments: %+v", r.Invalid)
	}
	// Families and summing are the exporter's; here each rule is a record.
	fam := map[string]string{}
	n := map[string]int{}
	for _, rec := range r.Records {
		fam[rec.Tag] = rec.Family
		n[rec.Tag+string(rec.Direction)]++
	}
	if fam["web4"] != "ip" || fam["web6"] != "ip6" || fam["unauthssh"] != "ip" {
		t.Errorf("families: %v", fam)
	}
	if n["web4in"] != 2 || n["web4out"] != 2 || n["unauthsshnone"] != 1 {
		t.Errorf("records per tag and direction: %v", n)
	}
	if r.Records[0].Description != "Unauthorized SSH traffic received" {
		t.Errorf("first record: %+v", r.Records[0])
	}
}

func TestSeedRulesIptablesNFT(t *testing.T) {
	netnstest.RequireRoot(t, "iptables-nft", "ip6tables-nft")
	ns := netnstest.New(t, seedAddrs...)
	for _, cmd := range [][]string{
		{"iptables-nft", "-N", "ACCT4"},
		{"iptables-nft", "-I", "INPUT", "1", "-j", "ACCT4"},
		{"iptables-nft", "-I", "OUTPUT", "1", "-j", "ACCT4"},
		{"iptables-nft", "-A", "ACCT4", "!", "-s", "10.2.3.0/24", "-p", "udp", "--dport", "22", "-m", "comment", "--comment", "=unauthssh= Unauthorized SSH traffic received"},
		{"iptables-nft", "-A", "ACCT4", "-d", "192.0.2.1", "-p", "udp", "--dport", "80", "-m", "comment", "--comment", "=web4_down= Combined web traffic to/from local 80/443"},
		{"iptables-nft", "-A", "ACCT4", "-s", "192.0.2.1", "-p", "udp", "--sport", "80", "-m", "comment", "--comment", "=web4_up= dummy"},
		{"iptables-nft", "-A", "ACCT4", "-d", "192.0.2.1", "-p", "udp", "--dport", "443", "-m", "comment", "--comment", "=web4_down= dummy"},
		{"iptables-nft", "-A", "ACCT4", "-s", "192.0.2.1", "-p", "udp", "--sport", "443", "-m", "comment", "--comment", "=web4_up= dummy"},
		{"ip6tables-nft", "-N", "ACCT6"},
		{"ip6tables-nft", "-I", "INPUT", "1", "-j", "ACCT6"},
		{"ip6tables-nft", "-I", "OUTPUT", "1", "-j", "ACCT6"},
		{"ip6tables-nft", "-A", "ACCT6", "-d", "2001:db8:f00d::1", "-p", "udp", "--dport", "80", "-m", "comment", "--comment", "=web6_down= Web traffic to/from local port 80"},
		{"ip6tables-nft", "-A", "ACCT6", "-s", "2001:db8:f00d::1", "-p", "udp", "--sport", "80", "-m", "comment", "--comment", "=web6_up= dummy"},
		{"ip6tables-nft", "-A", "ACCT6", "-d", "2001:db8:f00d::1", "-p", "udp", "--dport", "443", "-m", "comment", "--comment", "=web6ssl_down= Web traffic to/from local port 443"},
		{"ip6tables-nft", "-A", "ACCT6", "-s", "2001:db8:f00d::1", "-p", "udp", "--sport", "443", "-m", "comment", "--comment", "=web6ssl_up= dummy"},
	} {
		ns.Run(cmd[0], cmd[1:]...)
	}
	// Like seed 003, ACCT4 is jumped to from INPUT and OUTPUT, and traffic
	// between local addresses passes both: the kernel counts it twice.
	sent := seedTraffic(ns)
	for k, v := range sent {
		sent[k] = v.Add(v)
	}

	r, err := New(Options{NetNS: ns.Path()}).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := byToken(t, r)
	compare(t, "against traffic sent", got, sent)
	kernel := ns.SaveCounters("iptables-nft-save")
	for k, v := range ns.SaveCounters("ip6tables-nft-save") {
		kernel[k] = v
	}
	compare(t, "against iptables-nft-save -c", got, kernel)
}

func TestNamedCountersAndEdgeCases(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, seedAddrs...)
	ns.NFT(`
table inet t {
	counter c_in {
		comment "=objtag_in= named counter"
	}
	counter plain {
	}
	chain in {
		type filter hook input priority 0; policy accept;
		udp dport 53 counter name "c_in"
		udp dport 53 counter comment "=dns= second rule, same tag"
		udp dport 53 counter comment "=bad tag!= x"
		udp dport 53 comment "=nocounter= y"
	}
}
`)
	// nft's own syntax has no escape for '"': JSON does.
	ns.NFTJSON(`{"nftables": [{"insert": {"rule": {"family": "inet", "table": "t", "chain": "in", "index": 0,
		"comment": "=dns= quotes \" backslash \\ ünïcödé",
		"expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 53}}, {"counter": null}]}}}]}`)
	sent := ns.SendUDP("198.51.100.1:40053", "192.0.2.1:53", 64, 11)
	r, err := New(Options{NetNS: ns.Path()}).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []backends.Record{
		{Tag: "dns", Direction: tag.None, Family: "inet", Description: `quotes " backslash \ ünïcödé`, Packets: 11, Bytes: sent},
		{Tag: "dns", Direction: tag.None, Family: "inet", Description: "second rule, same tag", Packets: 11, Bytes: sent},
		{Tag: "objtag", Direction: tag.In, Family: "inet", Description: "named counter", Packets: 11, Bytes: sent},
	}
	if len(r.Records) != len(want) {
		t.Fatalf("records: got %+v, want %+v", r.Records, want)
	}
	for i := range want {
		if r.Records[i] != want[i] {
			t.Errorf("record %d: got %+v, want %+v", i, r.Records[i], want[i])
		}
	}
	if len(r.Invalid) != 2 || !strings.Contains(r.Invalid[0].Err.Error(), `' '`) ||
		!strings.Contains(r.Invalid[1].Err.Error(), "no counter") || r.Invalid[0].Where != "inet t in" {
		t.Errorf("invalid: %+v", r.Invalid)
	}
	if got := ns.NFTCounters()["=objtag_in="]; got.Packets != 11 || got.Bytes != sent {
		t.Errorf("nft -j says the named counter holds %+v, want 11 packets, %d bytes", got, sent)
	}
}

func TestTableDeletedBetweenReads(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, seedAddrs...)
	ns.NFT(seedRuleset)
	b := New(Options{NetNS: ns.Path()})
	r, err := b.Read(context.Background())
	if err != nil || len(r.Records) != 9 {
		t.Fatalf("first read: %d records, %v", len(r.Records), err)
	}
	ns.Run("nft", "delete", "table", "ip", "acct4")
	r, err = b.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Records) != 4 {
		t.Errorf("after deleting acct4: %d records, want the 4 of acct6: %+v", len(r.Records), r.Records)
	}
	for _, rec := range r.Records {
		if rec.Family != "ip6" {
			t.Errorf("record from a deleted table: %+v", rec)
		}
	}
}

func TestDumpBufferSizes(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, seedAddrs...)
	var rs strings.Builder
	rs.WriteString("table inet big {\n chain c {\n")
	for i := 0; i < 2000; i++ {
		rs.WriteString(" udp dport 9 counter comment \"=bulk_out= a rule with a long enough description to fill chunks\"\n")
	}
	rs.WriteString(" }\n}\n")
	ns.NFT(rs.String())
	// Dumps in page-sized, default and oversized chunks read the same.
	for _, size := range []int{4096, DefaultDumpBufferSize, 1 << 20} {
		r, err := New(Options{NetNS: ns.Path(), DumpBufferSize: size}).Read(context.Background())
		if err != nil {
			t.Fatalf("buffer %d: %v", size, err)
		}
		if len(r.Records) != 2000 {
			t.Errorf("buffer %d: %d records, want 2000", size, len(r.Records))
		}
	}
}

func TestMissingNamespace(t *testing.T) {
	_, err := New(Options{NetNS: "/run/netns/ipacct-does-not-exist"}).Read(context.Background())
	if err == nil || !strings.Contains(err.Error(), "network namespace") {
		t.Errorf("got %v, want a network namespace error", err)
	}
}
