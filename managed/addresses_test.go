package managed

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/collector/nft"
	"github.com/ipacct/ipacct_exporter/internal/netnstest"
)

// readAddresses reads the per-address counters with the exporter's own
// collector, keyed as netnstest.NFTSetCounters keys them, and the sets.
func readAddresses(t *testing.T, ns *netnstest.NS) (map[string]netnstest.Counter, []collector.AddressSet) {
	t.Helper()
	r, err := nft.New(nft.Options{NetNS: ns.Path()}).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Invalid) > 0 {
		t.Errorf("invalid: %+v", r.Invalid)
	}
	out := map[string]netnstest.Counter{}
	for _, s := range r.Sets {
		for _, e := range s.Elements {
			k := "=" + s.Tag + "_" + string(s.Direction) + "= " + e.Addr.String()
			out[k] = out[k].Add(netnstest.Counter{Packets: e.Packets, Bytes: e.Bytes})
		}
	}
	return out, r.Sets
}

func compareCounters(t *testing.T, what string, got, want map[string]netnstest.Counter) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %s: got %+v, want %+v", what, k, got[k], w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected %s %+v", what, k, g)
		}
	}
}

// serversYAML: servers in the shards of the default size, other in sets of
// one address, sized from its networks.
const serversYAML = `
addresses:
  - tag: servers
    description: Our three addresses
    networks: [192.0.2.1, 192.0.2.2, 2001:db8::1]
    size: 65535
  - tag: other
    networks: [192.0.2.3/32, 2001:db8::2]
    timeout: 1h
`

// TestAddressesCountTraffic: a server namespace with several addresses
// exchanges known traffic; each address's in and out equal what was sent,
// read by the exporter's collector and by nft.
func TestAddressesCountTraffic(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, "192.0.2.1/24", "192.0.2.2/24", "192.0.2.3/24", "2001:db8::1/64", "2001:db8::2/64")
	ch := apply(t, ns, mustBuild(t, serversYAML))
	if len(ch.SetsAdded) != 20 {
		t.Errorf("sets added: %v, want servers' 2 families × 2 directions × 4 shards (size 65535), and other's 2 × 2 sets", ch.SetsAdded)
	}
	a := ns.SendUDP("192.0.2.1:4001", "192.0.2.2:5001", 100, 3)
	b := ns.SendUDP("192.0.2.2:4002", "192.0.2.3:5002", 200, 2)
	c := ns.SendUDP("[2001:db8::2]:4003", "[2001:db8::1]:5003", 300, 4)
	d := ns.SendUDP("192.0.2.1:4004", "192.0.2.1:5004", 10, 5) // to itself: out and in
	want := map[string]netnstest.Counter{
		"=servers_out= 192.0.2.1":  {Packets: 8, Bytes: a + d},
		"=servers_in= 192.0.2.1":   {Packets: 5, Bytes: d},
		"=servers_in= 192.0.2.2":   {Packets: 3, Bytes: a},
		"=servers_out= 192.0.2.2":  {Packets: 2, Bytes: b},
		"=other_in= 192.0.2.3":     {Packets: 2, Bytes: b},
		"=other_out= 2001:db8::2":  {Packets: 4, Bytes: c},
		"=servers_in= 2001:db8::1": {Packets: 4, Bytes: c},
	}
	got, sets := readAddresses(t, ns)
	compareCounters(t, "against traffic sent", got, want)
	compareCounters(t, "against nft -j list ruleset", got, ns.NFTSetCounters())
	for _, s := range sets {
		if s.Overflow == nil || *s.Overflow != (collector.Counter{}) {
			t.Errorf("%s: overflow %+v", s.Where, s.Overflow)
		}
		if s.Tag == "other" {
			if s.Capacity != 1 {
				t.Errorf("%s: capacity %d, want the one address of its networks", s.Where, s.Capacity)
			}
			continue
		}
		// 65535 in 4 shards: 16384 each, and an eighth to spare.
		if s.Capacity != 18432 {
			t.Errorf("%s: capacity %d", s.Where, s.Capacity)
		}
		// Each address is in the shard its two lowest bits number.
		for _, e := range s.Elements {
			b := e.Addr.AsSlice()
			if want := fmt.Sprintf(".%d", b[len(b)-1]&3); !strings.HasSuffix(s.Where, want) {
				t.Errorf("%s in %s, want the shard ending %s", e.Addr, s.Where, want)
			}
		}
	}
	if ch := apply(t, ns, mustBuild(t, serversYAML)); !ch.Empty() || ch.SetsKept != 20 {
		t.Errorf("re-applying the same file changed %+v", ch)
	}
	again, _ := readAddresses(t, ns)
	compareCounters(t, "after re-applying", again, want)
}

// TestSetsSizedFromNetworks: seed 000's three addresses make a set of 4 per
// direction, not 4 shards of 16,384: the dry run is 56 lines, not 136.
func TestSetsSizedFromNetworks(t *testing.T) {
	rs := mustBuild(t, "addresses:\n  - tag: ips\n    networks: [10.0.0.4, 10.0.0.5, 10.0.0.6]\n")
	if len(rs.Sets) != 2 || rs.Sets[0].Size != 4 || rs.Sets[1].Size != 4 {
		t.Errorf("sets %+v, want one of size 4 per direction", rs.Sets)
	}
	text := rs.Text()
	if n := strings.Count(text, "\n"); n > 60 || strings.Contains(text, "vmap") {
		t.Errorf("dry run of %d lines, with shards: %t\n%s", n, strings.Contains(text, "vmap"), text)
	}
}

// TestAddressesReload changes the networks: the sets stay, the counts of
// the addresses that remain go on, and an address the entry no longer
// holds leaves the set.
func TestAddressesReload(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, "192.0.2.1/24", "192.0.2.2/24", "192.0.2.3/24")
	apply(t, ns, mustBuild(t, "addresses:\n  - tag: srv\n    networks: [192.0.2.1, 192.0.2.2]\n"))
	a := ns.SendUDP("192.0.2.1:4001", "192.0.2.2:5001", 100, 3)
	// Two addresses for two: the size from the networks stays 2.
	ch := apply(t, ns, mustBuild(t, "addresses:\n  - tag: srv\n    networks: [192.0.2.1, 192.0.2.3]\n"))
	if len(ch.SetsAdded)+len(ch.SetsRemoved) != 0 || ch.SetsKept != 2 || ch.ElementsRemoved != 1 || len(ch.Added) != 4 || len(ch.Removed) != 4 {
		t.Errorf("changing the networks: %+v; want the sets kept, 192.0.2.2 dropped, the four base chains (in and out at their hooks and forward) swapped", ch)
	}
	b := ns.SendUDP("192.0.2.1:4002", "192.0.2.3:5002", 50, 2)
	c := ns.SendUDP("192.0.2.2:4003", "192.0.2.3:5003", 70, 1) // .2 is no longer counted
	got, _ := readAddresses(t, ns)
	compareCounters(t, "after the reload", got, map[string]netnstest.Counter{
		"=srv_out= 192.0.2.1": {Packets: 5, Bytes: a + b},
		"=srv_in= 192.0.2.3":  {Packets: 3, Bytes: b + c},
	})
	// A new size is a new set: its counts start again.
	ch = apply(t, ns, mustBuild(t, "addresses:\n  - tag: srv\n    networks: [192.0.2.1, 192.0.2.3]\n    size: 100\n"))
	if len(ch.SetsAdded) != 2 || len(ch.SetsRemoved) != 2 {
		t.Errorf("changing the size: %+v", ch)
	}
	if got, _ := readAddresses(t, ns); len(got) != 0 {
		t.Errorf("new sets hold %v", got)
	}
}

// TestAddressesOverflow fills a set: the addresses past its size are not
// counted per address, and the overflow rule counts their packets.
func TestAddressesOverflow(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, "192.0.2.1/24", "192.0.2.2/24", "192.0.2.3/24", "192.0.2.4/24")
	apply(t, ns, mustBuild(t, "addresses:\n  - tag: small\n    direction: out\n    networks: [192.0.2.0/29]\n    size: 2\n"))
	a := ns.SendUDP("192.0.2.1:4001", "192.0.2.4:5001", 100, 3)
	b := ns.SendUDP("192.0.2.2:4002", "192.0.2.4:5002", 100, 2)
	c := ns.SendUDP("192.0.2.3:4003", "192.0.2.4:5003", 40, 7)
	got, sets := readAddresses(t, ns)
	compareCounters(t, "per address", got, map[string]netnstest.Counter{
		"=small_out= 192.0.2.1": {Packets: 3, Bytes: a},
		"=small_out= 192.0.2.2": {Packets: 2, Bytes: b},
	})
	if len(sets) != 1 || sets[0].Capacity != 2 || len(sets[0].Elements) != 2 {
		t.Fatalf("sets: %+v", sets)
	}
	if o := sets[0].Overflow; o == nil || *o != (collector.Counter{Packets: 7, Bytes: c}) {
		t.Errorf("overflow %+v, want 7 packets, %d bytes", o, c)
	}
}

// TestAddressesDryRunMatchesKernel: the dry run's sets and chains, loaded
// by nft, list the same as the ruleset applied over netlink.
func TestAddressesDryRunMatchesKernel(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	rs := mustBuild(t, `
count: all
accounting:
  - tag: web
    protocol: tcp
    ports: [80]
addresses:
  - tag: rent31
    description: Tenant 31
    networks: [198.51.100.0/25, 2001:db8:31::/64]
    timeout: 30d
  - tag: servers
    direction: out
    hooks: [output]
    size: 16
    networks: [192.0.2.1, 192.0.2.2]
`)
	a := dryRunListing(t, rs)
	for _, want := range []string{"timeout 30d", "size 16", "update @rent31_ipv6_in-", "goto addr_rent31_ipv4_out-", `comment "ipacct-overflow @servers_ipv4_out-`} {
		if !strings.Contains(a, want) {
			t.Errorf("listing lacks %q:\n%s", want, a)
		}
	}
}

// TestApplyLargeTransaction applies thousands of rules and sets in one
// transaction: every message is acknowledged, and the acknowledgements
// must fit the socket (they once did not, past a few hundred).
func TestApplyLargeTransaction(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	var y strings.Builder
	y.WriteString("accounting:\n")
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&y, "  - tag: t%d\n    local: [", i)
		for j := 0; j < 100; j++ {
			if j > 0 {
				y.WriteString(", ")
			}
			fmt.Fprintf(&y, "10.%d.%d.1", i, j)
		}
		y.WriteString("]\n")
	}
	y.WriteString("addresses:\n")
	for i := 0; i < 150; i++ {
		fmt.Fprintf(&y, "  - tag: a%d\n    networks: [172.16.%d.0/24, 172.17.%d.0/24]\n", i, i, i)
	}
	rs := mustBuild(t, y.String())
	ns := netnstest.New(t)
	apply(t, ns, rs)
	listing := ns.Run("nft", "list", "table", "inet", "ipacct")
	if n := strings.Count(listing, "comment \"=t"); n != 10*100*2 {
		t.Errorf("%d counting rules in the kernel, want 2000", n)
	}
	if n := strings.Count(listing, "\tset "); n != len(rs.Sets) {
		t.Errorf("%d sets in the kernel, want %d", n, len(rs.Sets))
	}
}

// TestAddressesTimeout: an address idle for the timeout leaves the set; when
// it comes back its count starts from zero.
func TestAddressesTimeout(t *testing.T) {
	netnstest.RequireRoot(t, "nft")
	ns := netnstest.New(t, "192.0.2.1/24", "192.0.2.2/24")
	apply(t, ns, mustBuild(t, "addresses:\n  - tag: idle\n    direction: out\n    networks: [192.0.2.0/24]\n    timeout: 1s\n"))
	a := ns.SendUDP("192.0.2.1:4001", "192.0.2.2:5001", 100, 3)
	got, _ := readAddresses(t, ns)
	compareCounters(t, "before the timeout", got, map[string]netnstest.Counter{"=idle_out= 192.0.2.1": {Packets: 3, Bytes: a}})
	time.Sleep(1500 * time.Millisecond)
	if got, _ := readAddresses(t, ns); len(got) != 0 {
		t.Errorf("after the timeout: %v", got)
	}
	b := ns.SendUDP("192.0.2.1:4002", "192.0.2.2:5002", 10, 1)
	got, _ = readAddresses(t, ns)
	compareCounters(t, "back after the timeout", got, map[string]netnstest.Counter{"=idle_out= 192.0.2.1": {Packets: 1, Bytes: b}})
}
