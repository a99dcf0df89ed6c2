package nft

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// setsRuleset has per-address sets of each kind the collector reads, and sets
// it must refuse with a reason.
const setsRuleset = `
table inet acct {
	# Full at two addresses; the rule after the update counts the rest.
	set small4 { type ipv4_addr; size 2; flags dynamic,timeout; timeout 1h; comment "=small_out= two at most"; }
	# The counter comes from the set's own definition.
	set in6 { type ipv6_addr; flags dynamic; counter; comment "=six_in="; }
	# Two expressions per element: the kernel lists them under
	# NFTA_SET_ELEM_EXPRESSIONS.
	set quota4 { type ipv4_addr; flags dynamic; counter quota 1000 mbytes; comment "=quota_in="; }
	set ranges { type ipv4_addr; flags interval; counter; comment "=ranges_in="; elements = { 192.0.2.0/28 } }
	set plain { type ipv4_addr; comment "=plain_in="; elements = { 192.0.2.9 } }
	set ports { type inet_service; comment "=ports_in="; elements = { 22 } }
	set untagged { type ipv4_addr; flags dynamic; counter; comment "just a set"; }
	chain out {
		type filter hook output priority 10; policy accept;
		ip saddr 192.0.2.0/24 jump small
	}
	chain small {
		update @small4 { ip saddr counter } return
		counter comment "ipacct-overflow @small4"
	}
	chain in {
		type filter hook input priority 10; policy accept;
		ip6 daddr 2001:db8::/64 update @in6 { ip6 daddr }
		ip daddr 192.0.2.0/24 update @quota4 { ip daddr }
		ip daddr 192.0.2.0/24 update @untagged { ip daddr }
	}
}
`

func TestTaggedSets(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, "192.0.2.1/24", "192.0.2.2/24", "192.0.2.3/24", "2001:db8::1/64", "2001:db8::2/64")
	ns.NFT(setsRuleset)
	b12 := ns.SendUDP("192.0.2.1:4001", "192.0.2.2:5001", 100, 3)
	b21 := ns.SendUDP("192.0.2.2:4002", "192.0.2.1:5002", 50, 2)
	b31 := ns.SendUDP("192.0.2.3:4003", "192.0.2.1:5003", 10, 4) // small4 is full by now
	b6 := ns.SendUDP("[2001:db8::1]:4004", "[2001:db8::2]:5004", 20, 5)

	r, err := New(Options{NetNS: ns.Path()}).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]netnstest.Counter{}
	sets := map[string]collector.AddressSet{}
	for _, s := range r.Sets {
		sets[s.Where] = s
		for _, e := range s.Elements {
			k := "=" + s.Tag + "_" + string(s.Direction) + "= " + e.Addr.String()
			if s.Direction == "" {
				k = "=" + s.Tag + "= " + e.Addr.String()
			}
			got[k] = got[k].Add(netnstest.Counter{Packets: e.Packets, Bytes: e.Bytes})
		}
	}
	sent := map[string]netnstest.Counter{
		"=small_out= 192.0.2.1": {Packets: 3, Bytes: b12},
		"=small_out= 192.0.2.2": {Packets: 2, Bytes: b21},
		"=six_in= 2001:db8::2":  {Packets: 5, Bytes: b6},
		"=quota_in= 192.0.2.2":  {Packets: 3, Bytes: b12},
		"=quota_in= 192.0.2.1":  {Packets: 6, Bytes: b21 + b31},
	}
	compare(t, "against traffic sent", got, sent)
	kernel := ns.NFTSetCounters()
	delete(kernel, "=plain_in= 192.0.2.9") // no counter: nft shows none either
	compare(t, "against nft -j list ruleset", got, kernel)

	small := sets["inet acct set small4"]
	if small.Capacity != 2 || small.Family != family.IPv4 || small.Description != "two at most" {
		t.Errorf("small4: %+v", small)
	}
	if small.Overflow == nil || *small.Overflow != (collector.Counter{Packets: 4, Bytes: b31}) {
		t.Errorf("small4 overflow: %+v, want 4 packets, %d bytes", small.Overflow, b31)
	}
	// nft gives a set with a counter the size 65535 when it names none.
	if six := sets["inet acct set in6"]; six.Capacity != 65535 || six.Family != family.IPv6 || six.Overflow != nil {
		t.Errorf("in6: %+v", six)
	}
	if len(sets) != 3 {
		t.Errorf("sets read: %d, want 3: %+v", len(sets), r.Sets)
	}

	invalid := map[string]string{}
	for _, ic := range r.Invalid {
		invalid[ic.Where] = ic.Err.Error()
	}
	want := map[string]string{
		"inet acct set ranges": "interval",
		"inet acct set plain":  "1 elements have no counter",
		"inet acct set ports":  "not ipv4_addr or ipv6_addr",
	}
	for where, msg := range want {
		if !strings.Contains(invalid[where], msg) {
			t.Errorf("%s: invalid reason %q, want it to say %q", where, invalid[where], msg)
		}
	}
	if len(invalid) != len(want) {
		t.Errorf("invalid: %v", invalid)
	}
}

// TestManySetsKeepTheirComments: with enough sets that their dump spans
// several receive chunks, what is reported of the first sets (their
// comments) must not be overwritten by the later chunks.
func TestManySetsKeepTheirComments(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t)
	var b strings.Builder
	b.WriteString("table inet many {\n")
	for i := 0; i < 400; i++ {
		fmt.Fprintf(&b, "\tset s%03d { type ipv4_addr; comment \"=plain%03d_in= set number %03d, whose element has no counter\"; elements = { 192.0.2.1 } }\n", i, i, i)
	}
	b.WriteString("}\n")
	ns.NFT(b.String())
	r, err := New(Options{NetNS: ns.Path()}).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Invalid) != 400 {
		t.Fatalf("%d invalid sets, want 400", len(r.Invalid))
	}
	for _, ic := range r.Invalid {
		var i int
		if _, err := fmt.Sscanf(ic.Where, "inet many set s%03d", &i); err != nil {
			t.Fatalf("where: %q", ic.Where)
		}
		if want := fmt.Sprintf("=plain%03d_in= set number %03d, whose element has no counter", i, i); ic.Comment != want {
			t.Errorf("%s: comment %q, want %q", ic.Where, ic.Comment, want)
		}
	}
}
