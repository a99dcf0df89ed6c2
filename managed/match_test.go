package managed

import (
	"strings"
	"testing"

	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

const matchYAML = `
accounting:
  - tag: established
    match: ct state established,related
  - tag: websyn
    protocol: tcp
    match: tcp dport { 80, 443 } tcp flags & (syn|ack) == syn
  - tag: ef
    match: ip dscp ef
  - tag: marked
    direction: out
    local: [192.0.2.1, 2001:db8::1]
    match: meta mark 0x1
  - tag: chosen
    local: [192.0.2.1]
    protocol: udp
    match: udp dport { 5001, 5002 }
`

// TestMatchDryRunMatchesKernel: entries with a match, applied over netlink
// and loaded by nft from the dry run, list the same.
func TestMatchDryRunMatchesKernel(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	rs := mustBuild(t, matchYAML)
	a := dryRunListing(t, rs)
	for _, want := range []string{"ip dscp ef", "meta mark 0x00000001", "ct state established,related", "udp dport 5002"} {
		if !strings.Contains(a, want) {
			t.Errorf("listing lacks %q:\n%s", want, a)
		}
	}
	// ip dscp is IPv4 only: the entry's family follows.
	if strings.Contains(a, "meta nfproto ipv6 ip dscp") {
		t.Errorf("an IPv6 rule for an IPv4 match:\n%s", a)
	}
}

// TestMatchCountsTraffic: only the traffic the match selects is counted.
func TestMatchCountsTraffic(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, "192.0.2.1/24", "192.0.2.2/24")
	apply(t, ns, mustBuild(t, matchYAML))
	a := ns.SendUDP("192.0.2.2:4001", "192.0.2.1:5001", 100, 3)
	b := ns.SendUDP("192.0.2.2:4002", "192.0.2.1:5002", 50, 2)
	ns.SendUDP("192.0.2.2:4003", "192.0.2.1:5003", 70, 4) // not chosen
	got := readTags(t, ns)
	if w := (netnstest.Counter{Packets: 5, Bytes: a + b}); got["=chosen_in="] != w {
		t.Errorf("chosen in: %+v, want %+v", got["=chosen_in="], w)
	}
	if got["=chosen_out="] != (netnstest.Counter{}) || got["=websyn_in="] != (netnstest.Counter{}) {
		t.Errorf("counted what the match excludes: %v", got)
	}
	if got["=marked_out="] != (netnstest.Counter{}) {
		t.Errorf("unmarked traffic counted as marked: %v", got)
	}
}
